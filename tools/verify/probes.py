"""Probes run in a test client pod, and what their output shows.

Every probe runs under bash in the client image (postgres:17-alpine: bash, pg_isready, musl's
getent). Three kinds:

- PostgreSQL ports: `pg_isready`, as the reference workshop does. Its status line is the verdict.
- HTTP ports: one request (method, path) written over bash's /dev/tcp, so any method works; the
  waypoint answers a denied request with `403` and the body `RBAC: access denied`.
- Any other port: connect, send two bytes, wait. A bare connect proves nothing in ambient: ztunnel
  accepts every captured connection itself before it dials anything (istio/istio#36540 shows the
  same for sidecars), and the waypoint's RBAC filter decides on the first bytes (Envoy's network
  RBAC filter checks in onData). So a denied connection is closed at once after the bytes; one that
  is answered, or held open longer than the 10s after which ztunnel and the waypoint give up
  dialling (ztunnel src/proxy.rs CONNECTION_TIMEOUT, Istio's default connectTimeout), reached its
  destination.

A name that does not resolve is an ERROR before anything is dialled: pg_isready would call it
`no response`, which reads like a denial.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from components.manifests import TEST_CLIENT_NAME
from stack import PROJECT

from .process import CompletedRun, failure, last_line

PG_ISREADY_CONNECT_TIMEOUT_SECONDS = 3
HOLD_SECONDS = 12
"""How long a TCP probe waits for an answer or a close: longer than the 10s ztunnel and the
waypoint spend dialling an upstream, so a connection still open then was accepted by it."""
HTTP_RESPONSE_SECONDS = 12
WAYPOINT_DENIAL_BODY = "RBAC: access denied"
MARKER = "verify-probe:"

# $1 is the host or address every probe dials first. IP literals need no lookup.
_RESOLVE = f"""\
case "$1" in *[!0-9.]*)
  command -v getent >/dev/null || {{ echo "{MARKER} missing getent"; exit 93; }}
  getent hosts "$1" >/dev/null || {{ echo "{MARKER} unresolved"; exit 90; }} ;;
esac
"""
_CONNECT = f"""\
trap '' PIPE
exec 3<>"/dev/tcp/$1/$2" || {{ echo "{MARKER} connect failed"; exit 91; }}
"""
PG_ISREADY_SCRIPT = _RESOLVE + f'exec pg_isready -h "$1" -p "$2" -t {PG_ISREADY_CONNECT_TIMEOUT_SECONDS}\n'
TCP_SCRIPT = _RESOLVE + _CONNECT + f"""\
printf '\\r\\n' >&3
if IFS= read -r -n 1 -t {HOLD_SECONDS} -u 3 _; then echo "{MARKER} answered"
elif [ $? -gt 128 ]; then echo "{MARKER} held open"
else echo "{MARKER} closed"; fi
"""
# $3 method, $4 path, $5 Host header. Prints the response's first lines, or a marker for none.
HTTP_SCRIPT = _RESOLVE + _CONNECT + f"""\
printf '%s %s HTTP/1.1\\r\\nHost: %s\\r\\nUser-Agent: ambient-egress-verify\\r\\nAccept: */*\\r\\n' "$3" "$4" "$5" >&3
printf 'Content-Length: 0\\r\\nConnection: close\\r\\n\\r\\n' >&3
deadline=$((SECONDS + {HTTP_RESPONSE_SECONDS})); lines=0; status=0
while [ "$lines" -lt 64 ]; do
  left=$((deadline - SECONDS))
  if [ "$left" -le 0 ]; then status=142; break; fi
  IFS= read -r -t "$left" -u 3 line; status=$?
  if [ -n "$line" ] || [ "$status" -eq 0 ]; then printf '%s\\n' "${{line%$'\\r'}}"; lines=$((lines + 1)); fi
  [ "$status" -eq 0 ] || break
done
if [ "$lines" -eq 0 ]; then
  if [ "$status" -gt 128 ]; then echo "{MARKER} no response"; else echo "{MARKER} closed"; fi
fi
"""
LONGEST_WAIT_SECONDS = max(PG_ISREADY_CONNECT_TIMEOUT_SECONDS, HOLD_SECONDS, HTTP_RESPONSE_SECONDS)


class Outcome(Enum):
    REACHED = "reached"
    REJECTING = "rejecting"
    """A PostgreSQL server answered but refuses sessions: the path is open, the database is not."""
    BLOCKED = "blocked"
    ERROR = "error"


@dataclass(frozen=True)
class Observation:
    outcome: Outcome
    observed: str
    """A few words for the table."""
    detail: str


class Probe(Protocol):
    @property
    def endpoint(self) -> str: ...

    def command(self) -> list[str]: ...

    def read(self, run: CompletedRun) -> Observation | None:
        """What the run shows, or None when it is not this probe's output."""


def _bash(script: str, *args: str) -> list[str]:
    return ["bash", "-c", script, "verify-probe", *args]


# pg_isready prints `<host>:<port> - <status>` and exits with the status's code. kubectl exec
# passes the remote exit code through but exits 1 on its own failures too, so an exit code counts
# only together with the status line that pg_isready prints for it.
_PG_ISREADY_STATUS = {
    0: ("accepting connections", Outcome.REACHED, "accepting"),
    1: ("rejecting connections", Outcome.REJECTING, "rejecting"),
    2: ("no response", Outcome.BLOCKED, "no response"),
}
_PG_ISREADY_NO_ATTEMPT = 3


@dataclass(frozen=True)
class _HostAndPort:
    host: str
    port: int

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class PgIsReady(_HostAndPort):
    def command(self) -> list[str]:
        return _bash(PG_ISREADY_SCRIPT, self.host, str(self.port))

    def read(self, run: CompletedRun) -> Observation | None:
        status_line = last_line(run.stdout)
        if run.exit_code in _PG_ISREADY_STATUS:
            status, outcome, observed = _PG_ISREADY_STATUS[run.exit_code]
            if status_line.endswith(f" - {status}"):
                return Observation(outcome, observed, status_line)
        if run.exit_code == _PG_ISREADY_NO_ATTEMPT and status_line.endswith(" - no attempt"):
            return Observation(Outcome.ERROR, "-", f"pg_isready made no attempt (exit 3, invalid parameters): {status_line}")
        return None


@dataclass(frozen=True)
class TcpConnect(_HostAndPort):
    def command(self) -> list[str]:
        return _bash(TCP_SCRIPT, self.host, str(self.port))

    def read(self, run: CompletedRun) -> Observation | None:
        marker = last_line(run.stdout)
        if marker == f"{MARKER} answered":
            return Observation(Outcome.REACHED, "answered", f"{self.endpoint} sent bytes back")
        if marker == f"{MARKER} held open":
            return Observation(Outcome.REACHED, "held open",
                               f"{self.endpoint} kept the connection open {HOLD_SECONDS}s after two bytes: accepted beyond "
                               "the waypoint and ztunnel, which close a denied or undialled connection sooner")
        if marker == f"{MARKER} closed":
            return Observation(Outcome.BLOCKED, "closed", f"{self.endpoint} closed the connection without a byte")
        return _connect_failed(self.endpoint, run)


_BASH_LOCATION = re.compile(r"^verify-probe: (line \d+: )?")


def _connect_failed(endpoint: str, run: CompletedRun) -> Observation | None:
    if last_line(run.stdout) == f"{MARKER} connect failed":
        reason = _BASH_LOCATION.sub("", failure(CompletedRun(run.exit_code, stderr=run.stderr)))
        return Observation(Outcome.BLOCKED, "refused", f"{endpoint}: {reason}")
    return None


_STATUS_LINE = re.compile(r"HTTP/\d(?:\.\d)? (?P<code>\d{3})")


@dataclass(frozen=True)
class HttpRequest:
    address: str
    """What is dialled: the host, or a raw IP."""
    port: int
    method: str
    path: str
    host: str
    """The Host header: the target's host, also when an IP is dialled."""

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    def command(self) -> list[str]:
        return _bash(HTTP_SCRIPT, self.address, str(self.port), self.method, self.path, self.host)

    def read(self, run: CompletedRun) -> Observation | None:
        lines = run.stdout.splitlines()
        status = _STATUS_LINE.match(lines[0]) if lines else None
        request = f"{self.method} {self.path} at {self.endpoint}"
        if status:
            code = int(status["code"])
            body = lines[lines.index("") + 1:] if "" in lines else []
            if code == 403 and body and body[0].startswith(WAYPOINT_DENIAL_BODY):
                return Observation(Outcome.BLOCKED, f"403 {WAYPOINT_DENIAL_BODY}", f"{request}: the waypoint denied it")
            return Observation(Outcome.REACHED, f"HTTP {code}", f"{request}: {lines[0]}")
        marker = last_line(run.stdout)
        if marker == f"{MARKER} closed":
            return Observation(Outcome.BLOCKED, "closed", f"{request}: closed without a response")
        if marker == f"{MARKER} no response":
            return Observation(Outcome.ERROR, "-", f"{request}: no response within {HTTP_RESPONSE_SECONDS}s; neither "
                                                   "denied nor answered")
        return _connect_failed(self.endpoint, run)


def observe(probe: Probe, namespace: str, run: CompletedRun, timeout: float) -> Observation:
    """What one `kubectl exec` of a probe shows; anything but the probe's own verdict is an ERROR."""
    if run.timed_out:
        return Observation(Outcome.ERROR, "-", f"kubectl exec did not finish within {timeout:g}s")
    marker = last_line(run.stdout)
    if marker == f"{MARKER} unresolved":
        host = probe.endpoint.rpartition(":")[0]
        return Observation(Outcome.ERROR, "-", f"{host} does not resolve in {namespace}/{TEST_CLIENT_NAME}: is its "
                                               "ServiceEntry there, and ztunnel's DNS capture on?")
    if marker.startswith(f"{MARKER} missing "):
        tool = marker.removeprefix(f"{MARKER} missing ")
        return Observation(Outcome.ERROR, "-", f"the test client image has no {tool}; it runs postgres:17-alpine")
    if f'pods "{TEST_CLIENT_NAME}" not found' in run.stderr:
        return Observation(Outcome.ERROR, "-", f"test client pod {namespace}/{TEST_CLIENT_NAME} not found: set "
                                               f"{PROJECT}:testClients: true and run pulumi up")
    observation = probe.read(run)
    if observation is not None:
        return observation
    return Observation(Outcome.ERROR, "-", f"kubectl exec failed (exit {run.exit_code}): {failure(run)}")
