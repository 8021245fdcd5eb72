"""The probes `make verify` runs in a client pod: what each output means, and the real bash scripts
run here against real sockets (a server that answers, one that closes, one that resets, no server,
an HTTP server answering as the waypoint or as the upstream). No pod, no mesh: the scripts' own
logic, with each case decided by an event, never by waiting."""

from __future__ import annotations

import shutil
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from tools.verify import probes
from tools.verify.checks import Result, Rule, judge
from tools.verify.probes import HttpRequest, Outcome, PgIsReady, TcpConnect, observe
from tools.verify.process import CompletedRun, SubprocessExecutor

PG = PgIsReady("172.18.255.202.nip.io", 5432)


@pytest.mark.parametrize("run", [
    CompletedRun(1, stderr="error: unable to upgrade connection: container not found (\"client\")\n"),
    CompletedRun(2, stderr="error: something went wrong\n"),
    CompletedRun(0, stdout=""),
    CompletedRun(2, stdout="172.18.255.202.nip.io:5432 - accepting connections\n"),
    CompletedRun(126, stderr='OCI runtime exec failed: exec: "bash": executable file not found in $PATH\n'),
    CompletedRun(3, stdout="172.18.255.202.nip.io:5432 - no attempt\n"),
], ids=["kubectl-exit-1", "kubectl-exit-2", "exit-0-without-status", "status-contradicts-exit", "no-bash", "no-attempt"])
def test_an_exit_code_without_pg_isready_s_matching_status_line_is_an_error(run):
    observation = observe(PG, "rds-demo-1", run, timeout=20)

    assert observation.outcome is Outcome.ERROR
    assert {judge(rule, observation) for rule in Rule} == {Result.ERROR}


@pytest.mark.parametrize("exit_code, status, outcome, connect, refuse", [
    (0, "accepting connections", Outcome.REACHED, "PASS", "FAIL"),
    (1, "rejecting connections", Outcome.REJECTING, "ERROR", "FAIL"),
    (2, "no response", Outcome.BLOCKED, "FAIL", "PASS"),
], ids=["accepting", "rejecting", "no-response"])
def test_pg_isready_s_verdict_judged_against_each_expectation(exit_code, status, outcome, connect, refuse):
    stderr = f"command terminated with exit code {exit_code}\n" if exit_code else ""
    run = CompletedRun(exit_code, f"{PG.endpoint} - {status}\n", stderr)

    observation = observe(PG, "rds-demo-1", run, timeout=20)

    assert observation.outcome is outcome
    assert (judge(Rule.CONNECT, observation).value, judge(Rule.REFUSE, observation).value) == (connect, refuse)
    assert judge(Rule.OBSERVE, observation).value == "INFO"


def test_a_tcp_connection_held_open_counts_as_reached_and_says_why():
    observation = observe(TcpConnect("1.1.1.1", 443), "rds-demo-1", CompletedRun(0, "verify-probe: held open\n"), 20)

    assert observation.outcome is Outcome.REACHED and observation.observed == "held open"
    assert "kept the connection open 12s" in observation.detail


def test_an_http_response_without_a_status_line_is_an_error():
    observation = observe(HttpRequest("httpbin.org", 80, "GET", "/", "httpbin.org"), "apps",
                          CompletedRun(0, "verify-probe: no response\n"), 20)

    assert observation.outcome is Outcome.ERROR
    assert observation.detail == "GET / at httpbin.org:80: no response within 12s; neither denied nor answered"


# --- the scripts themselves ------------------------------------------------------------------------

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="the probe scripts need bash")
Handler = Callable[[socket.socket], None]


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], int]]:
    """A local TCP server whose every connection `handler` answers; its port."""
    listeners: list[socket.socket] = []

    def start(handler: Handler) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def accept() -> None:
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:
                    return
                with connection:
                    handler(connection)

        threading.Thread(target=accept, daemon=True).start()
        return int(listener.getsockname()[1])

    yield start
    for listener in listeners:
        listener.close()


def run_probe(probe: probes.Probe) -> probes.Observation:
    return observe(probe, "here", SubprocessExecutor().run(probe.command(), 60), 60)


def answer_hello(connection: socket.socket) -> None:
    connection.recv(16)
    connection.sendall(b"hello")


def close_after_bytes(connection: socket.socket) -> None:
    # As the waypoint's RBAC filter does: it decides on the first bytes, then closes.
    connection.recv(16)


def reset_after_bytes(connection: socket.socket) -> None:
    connection.recv(16)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        return int(listener.getsockname()[1])


@needs_bash
@pytest.mark.parametrize("handler, outcome, observed", [
    (answer_hello, Outcome.REACHED, "answered"),
    (close_after_bytes, Outcome.BLOCKED, "closed"),
    (reset_after_bytes, Outcome.BLOCKED, "closed"),
], ids=["answered", "closed", "reset"])
def test_the_tcp_script_sends_bytes_and_tells_an_answer_from_a_close(serve, handler, outcome, observed):
    observation = run_probe(TcpConnect("127.0.0.1", serve(handler)))

    assert (observation.outcome, observation.observed) == (outcome, observed)


@needs_bash
def test_the_tcp_script_reports_a_refused_connection_as_blocked_with_the_reason():
    port = free_port()

    observation = run_probe(TcpConnect("127.0.0.1", port))

    assert (observation.outcome, observation.observed) == (Outcome.BLOCKED, "refused")
    assert observation.detail == f"127.0.0.1:{port}: /dev/tcp/127.0.0.1/{port}: Connection refused"


@needs_bash
@pytest.mark.skipif(shutil.which("getent") is None, reason="name lookups need getent")
@pytest.mark.parametrize("probe", [TcpConnect("no-such-host.invalid", 5432), PgIsReady("no-such-host.invalid", 5432),
                                   HttpRequest("no-such-host.invalid", 80, "GET", "/", "no-such-host.invalid")],
                         ids=["tcp", "pg_isready", "http"])
def test_every_script_reports_a_name_that_does_not_resolve_as_an_error_before_dialling(probe):
    observation = run_probe(probe)

    assert observation.outcome is Outcome.ERROR
    assert observation.detail.startswith("no-such-host.invalid does not resolve in here/client")


def http_server(status: str, body: str, seen: list[bytes]) -> Handler:
    def handler(connection: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += connection.recv(1024)
        seen.append(request)
        connection.sendall(f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\ncontent-type: text/plain\r\n\r\n{body}".encode())
    return handler


@needs_bash
@pytest.mark.parametrize("status, body, outcome, observed", [
    ("403 Forbidden", "RBAC: access denied", Outcome.BLOCKED, "403 RBAC: access denied"),
    ("403 Forbidden", "forbidden by the upstream", Outcome.REACHED, "HTTP 403"),
    ("200 OK", '{"url": "http://httpbin.org/anything"}\n', Outcome.REACHED, "HTTP 200"),
], ids=["waypoint-denial", "upstream-403", "upstream-200"])
def test_the_http_script_sends_the_request_as_given_and_only_the_waypoint_s_403_is_a_denial(serve, status, body, outcome,
                                                                                              observed):
    seen: list[bytes] = []
    port = serve(http_server(status, body, seen))

    observation = run_probe(HttpRequest("127.0.0.1", port, "DELETE", "/anything?x=1", "httpbin.org"))

    assert (observation.outcome, observation.observed) == (outcome, observed)
    request_line, host = seen[0].split(b"\r\n")[:2]
    assert (request_line, host) == (b"DELETE /anything?x=1 HTTP/1.1", b"Host: httpbin.org")


@needs_bash
def test_the_http_script_reports_a_connection_closed_without_a_response_as_blocked(serve):
    observation = run_probe(HttpRequest("127.0.0.1", serve(close_after_bytes), "GET", "/", "httpbin.org"))

    assert (observation.outcome, observation.observed) == (Outcome.BLOCKED, "closed")


@needs_bash
@pytest.mark.skipif(shutil.which("pg_isready") is None, reason="needs pg_isready")
def test_the_pg_isready_script_runs_pg_isready_on_the_address(serve):
    observation = run_probe(PgIsReady("127.0.0.1", serve(close_after_bytes)))

    assert (observation.outcome, observation.observed) == (Outcome.BLOCKED, "no response")
