"""`make verify` (tools/verify.py), driven by a fake kubectl: no cluster is needed, nor faked as live.

The fake answers each kubectl command from canned runs, so every test states exactly what the
cluster said; a command nobody canned fails the test instead of passing by accident.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from components.manifests import service_entry
from components.values import ServicePort, Waypoint, host_for_address
from stack import load_stack_file, parse_config
from stack.access import ALLOW, DENY, access_matrix
from tools import verify
from tools.verify import CompletedRun, Outcome, Result

ROOT = Path(__file__).resolve().parent.parent

# The reference workshop's design, written out so these tests do not move when the dev stack does.
REFERENCE_STACK = """\
config:
  ambient-egress:egressNamespace: istio-egress
  ambient-egress:databases:
    - name: postgres-1
    - name: postgres-2
  ambient-egress:grants:
    - namespace: rds-demo-1
      databases: [postgres-1]
    - namespace: rds-demo-2
      databases: [postgres-2]
  ambient-egress:testClients: true
"""
REFERENCE_MATRIX = {
    ("rds-demo-1", "postgres-1"): ALLOW,
    ("rds-demo-1", "postgres-2"): DENY,
    ("rds-demo-2", "postgres-1"): DENY,
    ("rds-demo-2", "postgres-2"): ALLOW,
}
ADDRESSES = {"postgres-1": "203.0.113.1", "postgres-2": "203.0.113.2"}
HOSTS = {name: f"{address}.nip.io" for name, address in ADDRESSES.items()}
SECONDS_PER_COMMAND = 0.25
NOT_FOUND_POD = CompletedRun(1, stderr='Error from server (NotFound): pods "client" not found\n')


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeExecutor:
    """Answers a command with the one canned run whose key tokens all appear in its argv, in order."""

    def __init__(self, responses: Mapping[tuple[str, ...], CompletedRun]):
        self.responses = dict(responses)
        self.clock = FakeClock()  # each command takes SECONDS_PER_COMMAND on it
        self.calls: list[tuple[list[str], float]] = []

    def run(self, argv: list[str], timeout: float) -> CompletedRun:
        self.calls.append((argv, timeout))
        matches = [run for key, run in self.responses.items() if _in_order(key, argv)]
        assert len(matches) == 1, f"{len(matches)} canned runs match {argv}"
        self.clock.now += SECONDS_PER_COMMAND
        return matches[0]

    def execs(self) -> list[tuple[list[str], float]]:
        return [(argv, timeout) for argv, timeout in self.calls if "exec" in argv]


def _in_order(key: tuple[str, ...], argv: list[str]) -> bool:
    remaining = iter(argv)
    return all(token in remaining for token in key)


def pg_isready(database: str, exit_code: int) -> CompletedRun:
    status = {0: "accepting connections", 1: "rejecting connections", 2: "no response", 3: "no attempt"}[exit_code]
    stderr = f"command terminated with exit code {exit_code}\n" if exit_code else ""
    return CompletedRun(exit_code, f"{HOSTS[database]}:5432 - {status}\n", stderr)


def service_entry_run(database: str) -> CompletedRun:
    manifest = service_entry(database, "istio-egress", host=host_for_address(ADDRESSES[database]), addresses=None,
                             ports=[ServicePort.tcp(5432, name="tcp-postgres")],
                             waypoint=Waypoint(name="waypoint", namespace="istio-egress"))
    return CompletedRun(0, json.dumps(manifest))


def reachable_cluster() -> dict[tuple[str, ...], CompletedRun]:
    return {
        ("config", "current-context"): CompletedRun(0, "kind-ambient\n"),
        ("get", "--raw", "/readyz"): CompletedRun(0, "ok"),
    }


def cluster(
    cells: Mapping[tuple[str, str], CompletedRun] | None = None,
    service_entries: Mapping[str, CompletedRun] | None = None,
) -> dict[tuple[str, ...], CompletedRun]:
    """A reachable cluster that behaves as granted, except for the given cells and ServiceEntries."""
    responses = reachable_cluster()
    for database in HOSTS:
        run = (service_entries or {}).get(database, service_entry_run(database))
        responses[(verify.SERVICE_ENTRY_RESOURCE, "-n", "istio-egress", database)] = run
    for (namespace, database), expected in REFERENCE_MATRIX.items():
        run = (cells or {}).get((namespace, database), pg_isready(database, 0 if expected == ALLOW else 2))
        responses[("exec", "-n", namespace, "-h", HOSTS[database])] = run
    return responses


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.reference.yaml").write_text(REFERENCE_STACK)
    return tmp_path


def run_verify(project_dir: Path, executor: FakeExecutor, *args: str) -> int:
    return verify.main(["--stack", "reference", *args], executor=executor, clock=executor.clock, project_dir=project_dir)


def result_rows(out: str) -> dict[tuple[str, str], list[str]]:
    """Table rows by (namespace, database): [expected, observed, result, seconds]."""
    # Columns are at least two spaces apart; a cell ("no response") may hold one.
    rows = [re.split(r"\s{2,}", line) for line in out.splitlines() if line.startswith("rds-demo-")]
    return {(row[0], row[1]): row[2:] for row in rows}


def test_the_dev_stack_passes_when_the_cluster_behaves_as_granted(capsys):
    assert access_matrix(load_stack_file(ROOT / "Pulumi.dev.yaml")) == {
        "rds-demo-1": {"postgres-1": ALLOW, "postgres-2": DENY},
        "rds-demo-2": {"postgres-1": DENY, "postgres-2": ALLOW},
    }
    responses = cluster()
    responses[("config", "get-contexts")] = CompletedRun(0, "kind-ambient\nkind-ambient-egress\n")
    executor = FakeExecutor(responses)

    code = verify.main(["--stack", "dev"], executor=executor, clock=executor.clock, project_dir=ROOT)

    out = capsys.readouterr().out
    assert code == verify.EXIT_PASSED
    assert {cell: row[2] for cell, row in result_rows(out).items()} == dict.fromkeys(REFERENCE_MATRIX, "PASS")
    assert "4 passed, 0 failed, 0 errors" in out


def test_verify_targets_the_stacks_kubernetes_context_not_the_current_one():
    responses = cluster()
    responses[("config", "get-contexts")] = CompletedRun(0, "kind-ambient\nkind-ambient-egress\n")
    executor = FakeExecutor(responses)

    verify.main(["--stack", "dev"], executor=executor, clock=executor.clock, project_dir=ROOT)

    assert executor.execs() and all(argv[1:3] == ["--context", "kind-ambient-egress"] for argv, _ in executor.execs())
    assert not any("current-context" in argv for argv, _ in executor.calls)


def test_each_check_runs_pg_isready_in_the_client_pod_against_the_service_entry_host(project_dir):
    executor = FakeExecutor(cluster())

    run_verify(project_dir, executor)

    assert executor.execs()[0] == (
        ["kubectl", "exec", "-n", "rds-demo-1", "client", "-c", "client", "--",
         "pg_isready", "-h", "203.0.113.1.nip.io", "-p", "5432", "-t", "3"],
        verify.DEFAULT_EXEC_TIMEOUT_SECONDS,
    )


def test_a_denied_pair_that_connects_fails_and_exits_1(project_dir, capsys):
    code = run_verify(project_dir, FakeExecutor(cluster({("rds-demo-1", "postgres-2"): pg_isready("postgres-2", 0)})))

    out = capsys.readouterr().out
    assert code == verify.EXIT_FAILED
    assert result_rows(out)[("rds-demo-1", "postgres-2")] == ["DENY", "connected", "FAIL", "0.25"]
    assert "3 passed, 1 failed, 0 errors" in out


def test_an_allowed_pair_with_no_response_fails(project_dir, capsys):
    code = run_verify(project_dir, FakeExecutor(cluster({("rds-demo-1", "postgres-1"): pg_isready("postgres-1", 2)})))

    out = capsys.readouterr().out
    assert code == verify.EXIT_FAILED
    assert result_rows(out)[("rds-demo-1", "postgres-1")] == ["ALLOW", "no response", "FAIL", "0.25"]
    assert "FAIL rds-demo-1 -> postgres-1 (expected ALLOW): 203.0.113.1.nip.io:5432 - no response" in out


def test_a_rejecting_server_on_a_denied_pair_fails_because_the_connection_got_through(project_dir, capsys):
    code = run_verify(project_dir, FakeExecutor(cluster({("rds-demo-2", "postgres-1"): pg_isready("postgres-1", 1)})))

    assert code == verify.EXIT_FAILED
    assert result_rows(capsys.readouterr().out)[("rds-demo-2", "postgres-1")][2] == "FAIL"


def test_pg_isready_exit_3_is_an_error_not_a_denied_pass(project_dir, capsys):
    code = run_verify(project_dir, FakeExecutor(cluster({("rds-demo-1", "postgres-2"): pg_isready("postgres-2", 3)})))

    out = capsys.readouterr().out
    assert code == verify.EXIT_NOT_VERIFIED
    assert result_rows(out)[("rds-demo-1", "postgres-2")] == ["DENY", "-", "ERROR", "0.25"]
    assert "pg_isready made no attempt (exit 3, invalid parameters): 203.0.113.2.nip.io:5432 - no attempt" in out


def test_a_kubectl_exec_timeout_is_an_error_and_honours_the_timeout_option(project_dir, capsys):
    executor = FakeExecutor(cluster({("rds-demo-1", "postgres-2"): CompletedRun(None, timed_out=True)}))

    code = run_verify(project_dir, executor, "--timeout", "7")

    out = capsys.readouterr().out
    assert code == verify.EXIT_NOT_VERIFIED
    assert result_rows(out)[("rds-demo-1", "postgres-2")][2] == "ERROR"
    assert "kubectl exec did not finish within 7s" in out
    assert {timeout for _, timeout in executor.execs()} == {7.0}


def test_a_missing_client_pod_is_an_error_never_a_denied_pass(project_dir, capsys):
    # kubectl exits 1 here, the same code as pg_isready's "rejecting": only the status line counts.
    cells = {("rds-demo-1", database): NOT_FOUND_POD for database in HOSTS}

    code = run_verify(project_dir, FakeExecutor(cluster(cells)))

    out = capsys.readouterr().out
    assert code == verify.EXIT_NOT_VERIFIED
    rows = result_rows(out)
    assert [rows[("rds-demo-1", database)][2] for database in HOSTS] == ["ERROR", "ERROR"]
    assert "test client pod rds-demo-1/client not found: set ambient-egress:testClients: true and run pulumi up" in out
    assert "2 passed, 0 failed, 2 errors" in out


@pytest.mark.parametrize("run", [
    CompletedRun(1, stderr="error: unable to upgrade connection: container not found (\"client\")\n"),
    CompletedRun(2, stderr="error: something went wrong\n"),
    CompletedRun(0, stdout=""),
    CompletedRun(2, stdout="203.0.113.2.nip.io:5432 - accepting connections\n"),
    CompletedRun(126, stderr='OCI runtime exec failed: exec: "pg_isready": executable file not found in $PATH\n'),
], ids=["kubectl-exit-1", "kubectl-exit-2", "exit-0-without-status", "status-contradicts-exit", "no-pg_isready"])
def test_an_exit_code_without_pg_isready_s_matching_status_line_is_an_error(run):
    observation = verify.interpret_probe("rds-demo-1", run, timeout=15)

    assert observation.outcome is Outcome.ERROR
    assert verify.judge(DENY, observation) is Result.ERROR
    assert verify.judge(ALLOW, observation) is Result.ERROR


def test_a_missing_service_entry_makes_its_column_errors_without_probing_it(project_dir, capsys):
    missing = CompletedRun(1, stderr='Error from server (NotFound): serviceentries.networking.istio.io "postgres-1" not found\n')
    executor = FakeExecutor(cluster(service_entries={"postgres-1": missing}))

    code = run_verify(project_dir, executor)

    out = capsys.readouterr().out
    rows = result_rows(out)
    assert code == verify.EXIT_NOT_VERIFIED
    assert [rows[(namespace, "postgres-1")][2:] for namespace in ("rds-demo-1", "rds-demo-2")] == [["ERROR", "-"]] * 2
    assert "ServiceEntry istio-egress/postgres-1 not found: run pulumi up first" in out
    assert all(HOSTS["postgres-1"] not in argv for argv, _ in executor.execs())


@pytest.mark.parametrize("responses, message", [
    ({("config", "current-context"): CompletedRun(1, stderr="error: current-context is not set\n")},
     "no kubeconfig/current context: error: current-context is not set"),
    ({(): CompletedRun(verify.COMMAND_NOT_FOUND, stderr="kubectl: command not found")},
     "kubectl is not installed or not on PATH"),
    ({**reachable_cluster(), ("get", "--raw", "/readyz"): CompletedRun(
        1, stderr="The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?\n")},
     "cluster of context 'kind-ambient' is not reachable: The connection to the server 127.0.0.1:6443 was refused"),
    ({**reachable_cluster(), ("get", "--raw", "/readyz"): CompletedRun(None, timed_out=True)},
     "cluster of context 'kind-ambient' is not reachable: no answer within 10s"),
], ids=["no-kubeconfig", "no-kubectl", "cluster-refuses", "cluster-silent"])
def test_without_a_usable_cluster_it_stops_with_exit_2_a_clear_message_and_no_pass(project_dir, capsys, responses, message):
    executor = FakeExecutor(responses)

    code = run_verify(project_dir, executor)

    output = capsys.readouterr()
    assert code == verify.EXIT_NOT_VERIFIED
    assert message in output.err
    assert "PASS" not in output.out + output.err
    assert executor.execs() == []


def test_an_unknown_context_stops_with_exit_2_naming_the_known_ones(project_dir, capsys):
    responses = {("config", "get-contexts", "-o", "name"): CompletedRun(0, "kind-ambient\n")}

    code = run_verify(project_dir, FakeExecutor(responses), "--context", "prod")

    assert code == verify.EXIT_NOT_VERIFIED
    assert "no kubeconfig context 'prod' (known contexts: kind-ambient)" in capsys.readouterr().err


def test_the_context_option_applies_to_every_kubectl_command(project_dir, capsys):
    responses = {**cluster(), ("config", "get-contexts", "-o", "name"): CompletedRun(0, "kind-ambient\nkind-other\n")}
    del responses[("config", "current-context")]
    executor = FakeExecutor(responses)

    code = run_verify(project_dir, executor, "--context", "kind-other")

    assert code == verify.EXIT_PASSED
    assert all(argv[:3] == ["kubectl", "--context", "kind-other"] for argv, _ in executor.calls)
    assert "on context 'kind-other'" in capsys.readouterr().err


def test_a_stack_without_test_clients_stops_before_touching_the_cluster(project_dir, capsys):
    (project_dir / "Pulumi.bare.yaml").write_text(REFERENCE_STACK.replace("testClients: true", "testClients: false"))
    executor = FakeExecutor({})

    code = verify.main(["--stack", "bare"], executor=executor, clock=FakeClock(), project_dir=project_dir)

    assert code == verify.EXIT_NOT_VERIFIED
    assert "set ambient-egress:testClients: true and pulumi up" in capsys.readouterr().err
    assert executor.calls == []


def test_a_missing_stack_file_stops_with_exit_2(project_dir, capsys):
    code = verify.main(["--stack", "nope"], executor=FakeExecutor({}), clock=FakeClock(), project_dir=project_dir)

    assert code == verify.EXIT_NOT_VERIFIED
    assert "no stack file Pulumi.nope.yaml" in capsys.readouterr().err


def test_progress_lines_and_per_check_timings_appear_as_checks_run(project_dir, capsys):
    run_verify(project_dir, FakeExecutor(cluster()))

    output = capsys.readouterr()
    assert output.err.splitlines()[1:] == [
        "[1/4] rds-demo-1 -> postgres-1 ... PASS (0.25s)",
        "[2/4] rds-demo-1 -> postgres-2 ... PASS (0.25s)",
        "[3/4] rds-demo-2 -> postgres-1 ... PASS (0.25s)",
        "[4/4] rds-demo-2 -> postgres-2 ... PASS (0.25s)",
    ]
    assert output.out.splitlines()[0].split() == ["NAMESPACE", "DATABASE", "EXPECTED", "OBSERVED", "RESULT", "SECONDS"]
    # Four kubectl calls before the checks (context, readiness, two ServiceEntries), one per check.
    assert "4 passed, 0 failed, 0 errors in 2.00s" in output.out


def test_denials_are_flagged_unconfirmed_when_no_namespace_reached_the_database(project_dir, capsys):
    code = run_verify(project_dir, FakeExecutor(cluster({("rds-demo-2", "postgres-2"): pg_isready("postgres-2", 2)})))

    out = capsys.readouterr().out
    assert code == verify.EXIT_FAILED
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and notes[0].startswith("note: no namespace connected to postgres-2, so its DENY passes")


def test_json_output_is_the_whole_result_on_stdout(project_dir, capsys):
    code = run_verify(project_dir, FakeExecutor(cluster({("rds-demo-1", "postgres-2"): NOT_FOUND_POD})), "--json")

    report = json.loads(capsys.readouterr().out)
    assert code == report["exitCode"] == verify.EXIT_NOT_VERIFIED
    assert report["stack"] == "reference" and report["context"] == "kind-ambient" and report["error"] is None
    assert report["summary"] == {"passed": 3, "failed": 0, "errors": 1, "seconds": 2.0}
    assert report["checks"][1] == {
        "namespace": "rds-demo-1", "database": "postgres-2", "host": "203.0.113.2.nip.io", "port": 5432,
        "expected": "DENY", "observed": "error", "result": "ERROR", "seconds": 0.25,
        "detail": "test client pod rds-demo-1/client not found: set ambient-egress:testClients: true and run pulumi up",
    }
    assert report["unconfirmedDenials"] == []


def test_json_output_reports_why_verification_could_not_run(project_dir, capsys):
    responses = {("config", "current-context"): CompletedRun(1, stderr="error: current-context is not set\n")}

    code = run_verify(project_dir, FakeExecutor(responses), "--json")

    report = json.loads(capsys.readouterr().out)
    assert code == report["exitCode"] == verify.EXIT_NOT_VERIFIED
    assert report["checks"] == [] and report["error"].startswith("no kubeconfig/current context")


def test_an_exec_timeout_within_pg_isready_s_own_is_refused(capsys):
    with pytest.raises(SystemExit) as stopped:
        verify.parse_args(["--timeout", "3"])

    assert stopped.value.code == 2
    assert "must exceed pg_isready's own 3s connect timeout" in capsys.readouterr().err


def test_live_cluster_verifies_the_dev_stack_when_one_is_reachable(capsys):
    """The real thing: real kubectl, real cluster. Skipped, with the reason, where none answers."""
    try:
        context = verify.preflight(verify.Kubectl(verify.SubprocessExecutor()))
    except verify.CannotVerify as reason:
        pytest.skip(f"no live cluster: {reason}")

    code = verify.main(["--stack", "dev"])

    output = capsys.readouterr()
    if code == verify.EXIT_NOT_VERIFIED:
        pytest.skip(f"context {context!r} answers but the dev stack could not be verified:\n{output.out}")
    assert code == verify.EXIT_PASSED, output.out


def test_service_account_grant_is_checked_as_the_client_pods_service_account():
    config = parse_config({
        "databases": [{"name": "orders", "address": "orders.example.com"}, {"name": "billing", "address": "10.0.0.9"}],
        "grants": [{"namespace": "shop", "databases": ["orders"], "serviceAccounts": ["checkout"]}],
        "testClients": True,
    })
    targets = {"orders": verify.Endpoint("orders.example.com", 5432), "billing": verify.Endpoint("10.0.0.9.nip.io", 5432)}
    checks = verify.plan_checks(config, targets)
    assert [(c.namespace, c.database, c.expected) for c in checks] == [("shop", "orders", ALLOW), ("shop", "billing", DENY)]


def test_services_other_than_databases_are_not_probed_with_pg_isready():
    config = parse_config({
        "databases": [{"name": "orders", "address": "orders.example.com"}],
        "services": [{"name": "httpbin", "host": "httpbin.org", "ports": [{"number": 80, "protocol": "HTTP"}]}],
        "grants": [{"namespace": "shop", "databases": ["orders"], "services": ["httpbin"]}],
        "testClients": True,
    })
    checks = verify.plan_checks(config, {"orders": verify.Endpoint("orders.example.com", 5432)})
    assert [(c.namespace, c.database, c.expected) for c in checks] == [("shop", "orders", ALLOW)]
