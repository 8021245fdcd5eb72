"""`make verify` (tools/verify), driven by a fake kubectl: no cluster is needed, nor faked as live.

The fake answers each command from canned runs, so every test states exactly what the cluster said;
a command nobody canned fails the test instead of passing by accident. The expectations come from a
hand-written plan.json in the shape `make plan` writes (seed 000's design on kind), or from canned
`pulumi stack output` JSON.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from components import manifests
from components.manifests import PART_OF, allow_nothing_policy, grant_policy, service_entry
from components.values import ServicePort, Waypoint
from tools import verify
from tools.verify import cli, probes
from tools.verify.process import CompletedRun
from tools.verify.status import GATEWAY_RESOURCE, POLICY_RESOURCE, SERVICE_ENTRY_RESOURCE

ROOT = Path(__file__).resolve().parent.parent
ALLOW, DENY = "ALLOW", "DENY"
# cloud-provider-kind hands out LoadBalancer addresses from the kind Docker network.
LB = {"postgres-1": "172.18.255.201", "postgres-2": "172.18.255.202"}
HOSTS = {name: f"{address}.nip.io" for name, address in LB.items()}
REFERENCE_MATRIX = {
    ("rds-demo-1", "postgres-1"): ALLOW,
    ("rds-demo-1", "postgres-2"): DENY,
    ("rds-demo-2", "postgres-1"): DENY,
    ("rds-demo-2", "postgres-2"): ALLOW,
}
NAMESPACES = ("rds-demo-1", "rds-demo-2")
WAYPOINT = Waypoint(name="waypoint", namespace="istio-egress")
SECONDS_PER_COMMAND = 0.25
# The reference stack file: no kubernetes:context, so the current context is used.
REFERENCE_STACK = "config:\n  ambient-egress:testClients: true\n"

Answer = CompletedRun | Callable[[list[str]], CompletedRun]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _in_order(key: tuple[str, ...], argv: list[str]) -> bool:
    remaining = iter(argv)
    return all(token in remaining for token in key)


class FakeExecutor:
    """Answers a command with the one canned run whose key tokens all appear in its argv, in order."""

    def __init__(self, responses: Mapping[tuple[str, ...], Answer]):
        self.responses = dict(responses)
        self.clock = FakeClock()  # each command takes SECONDS_PER_COMMAND on it
        self.calls: list[tuple[list[str], float]] = []
        self._lock = threading.Lock()

    def run(self, argv: list[str], timeout: float) -> CompletedRun:
        with self._lock:
            self.calls.append((argv, timeout))
            matches = [answer for key, answer in self.responses.items() if _in_order(key, argv)]
            self.clock.now += SECONDS_PER_COMMAND
        assert len(matches) == 1, f"{len(matches)} canned runs match {argv}"
        answer = matches[0]
        return answer(argv) if callable(answer) else answer

    def execs(self) -> list[tuple[list[str], float]]:
        return [(argv, timeout) for argv, timeout in self.calls if "exec" in argv]

    def dialled(self) -> list[tuple[str, str]]:
        """(namespace, address) of every probe run."""
        return [(argv[argv.index("-n") + 1], argv[argv.index("verify-probe") + 1]) for argv, _ in self.execs()]


# --- what the cluster says ------------------------------------------------------------------------

def json_run(document: Any) -> CompletedRun:
    return CompletedRun(0, json.dumps(document))


def listed(*items: Mapping[str, Any]) -> CompletedRun:
    return json_run({"apiVersion": "v1", "kind": "List", "items": list(items)})


def with_condition(manifest: Mapping[str, Any], kind: str, status: str = "True", reason: str = "Accepted",
                   message: str = "", **extra_status: Any) -> dict[str, Any]:
    live = copy.deepcopy(dict(manifest))
    live["status"] = {"conditions": [{"type": kind, "status": status, "reason": reason, "message": message}], **extra_status}
    return live


def gateway(status: str = "True", addresses: tuple[str, ...] = ("10.96.0.50",), reason: str = "Programmed",
            message: str = "") -> dict[str, Any]:
    manifest = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                "metadata": {"name": "waypoint", "namespace": "istio-egress", "labels": dict(PART_OF)},
                "spec": {"gatewayClassName": "istio-waypoint"}}
    return with_condition(manifest, "Programmed", status, reason, message,
                          addresses=[{"type": "IPAddress", "value": address} for address in addresses])


def bound_service_entry(name: str, status: str = "True", reason: str = "WaypointAccepted", message: str = "",
                        host: str | None = None) -> dict[str, Any]:
    manifest = service_entry(name, "istio-egress", host=host or HOSTS[name], addresses=[LB[name]], resolution="NONE",
                             ports=[ServicePort.tcp(5432, name="tcp-postgres")], waypoint=WAYPOINT)
    return with_condition(manifest, "istio.io/WaypointBound", status, reason, message)


def accepted(policy: Mapping[str, Any], status: str = "True", reason: str = "Accepted", message: str = "") -> dict[str, Any]:
    return with_condition(policy, "WaypointAccepted", status, reason, message)


def reference_policies() -> list[dict[str, Any]]:
    policies = [allow_nothing_policy(name, "istio-egress") for name in LB]
    policies += [grant_policy(target, "istio-egress", source_namespace=namespace, rules=[])
                 for (namespace, target), verdict in REFERENCE_MATRIX.items() if verdict == ALLOW]
    return [accepted(policy) for policy in policies]


def ready_pod(namespace: str, service_account: str | None = None) -> dict[str, Any]:
    pod = manifests.test_client_pod(namespace, service_account_name=service_account)
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    return pod


def pg_isready(address: str, exit_code: int) -> CompletedRun:
    status = {0: "accepting connections", 1: "rejecting connections", 2: "no response", 3: "no attempt"}[exit_code]
    stderr = f"command terminated with exit code {exit_code}\n" if exit_code else ""
    return CompletedRun(exit_code, f"{address}:5432 - {status}\n", stderr)


def tcp(marker: str) -> CompletedRun:
    return CompletedRun(0, f"verify-probe: {marker}\n")


def http(status_line: str, body: str) -> CompletedRun:
    return CompletedRun(0, f"{status_line}\ncontent-type: text/plain\n\n{body}\n")


RBAC_DENIED = http("HTTP/1.1 403 Forbidden", "RBAC: access denied")
UNDECLARED_BLOCKED = tcp("closed")


def reachable_cluster() -> dict[tuple[str, ...], Answer]:
    return {
        ("config", "current-context"): CompletedRun(0, "kind-ambient-egress\n"),
        ("get", "--raw", "/readyz"): CompletedRun(0, "ok"),
    }


Responses = dict[tuple[str, ...], Answer]


def host_answers(namespace: str, target: str, exit_code: int) -> dict[tuple[str, str], CompletedRun]:
    """pg_isready's answer from `namespace` through `target`'s host."""
    return {(namespace, HOSTS[target]): pg_isready(HOSTS[target], exit_code)}


def cluster(probes_: Mapping[tuple[str, str], CompletedRun] | None = None, **objects: CompletedRun) -> Responses:
    """The reference design, live and behaving as granted, except for the given probes (keyed
    (namespace, address dialled)) and objects (gateway, service_entries, policies, pod_<namespace>)."""
    responses = reachable_cluster()
    responses[("get", GATEWAY_RESOURCE, "waypoint")] = objects.get("gateway", json_run(gateway()))
    responses[("get", SERVICE_ENTRY_RESOURCE, "-n", "istio-egress")] = objects.get(
        "service_entries", listed(*(bound_service_entry(name) for name in LB)))
    responses[("get", POLICY_RESOURCE, "-n", "istio-egress")] = objects.get("policies", listed(*reference_policies()))
    for namespace in NAMESPACES:
        pod = objects.get(f"pod_{namespace.replace('-', '_')}", json_run(ready_pod(namespace)))
        responses[("get", "pod", "client", "-n", namespace)] = pod
        responses[("exec", "-n", namespace, "verify-probe", "1.1.1.1")] = UNDECLARED_BLOCKED
    for (namespace, target), verdict in REFERENCE_MATRIX.items():
        for address in (HOSTS[target], LB[target]):
            responses[("exec", "-n", namespace, "verify-probe", address)] = pg_isready(address, 0 if verdict == ALLOW else 2)
    for (namespace, address), run in (probes_ or {}).items():
        responses[("exec", "-n", namespace, "verify-probe", address)] = run
    return responses


# --- what the plan says -----------------------------------------------------------------------------

def database_target(name: str) -> dict[str, Any]:
    return {"name": name, "kind": "database", "serviceEntry": f"istio-egress/{name}", "hosts": [HOSTS[name]],
            "addresses": [LB[name]], "ports": [{"number": 5432, "protocol": "TCP", "name": "tcp-postgres"}]}


def reference_plan(**overrides: Any) -> dict[str, Any]:
    """Seed 000 as `make plan --lb postgres-1=... --lb postgres-2=...` writes it."""
    verdicts: dict[str, dict[str, str]] = {}
    for (namespace, target), verdict in REFERENCE_MATRIX.items():
        verdicts.setdefault(namespace, {})[f"istio-egress/{target}"] = verdict
    plan = {
        "format": "ambient-egress.plan/1", "stack": "reference", "istioVersion": "1.30", "waypoint": "istio-egress/waypoint",
        "clients": list(NAMESPACES), "targets": [database_target(name) for name in LB],
        "verdicts": verdicts,
        "declared": {namespace: {target.split("/")[1]: verdict for target, verdict in row.items()}
                     for namespace, row in verdicts.items()},
        "otherDestinations": dict.fromkeys(NAMESPACES, DENY), "testClients": {namespace: namespace for namespace in NAMESPACES},
        "sampleRequests": [], "differences": [], "findings": [], "counts": {ALLOW: 2, DENY: 2}, "exitCode": 0,
    }
    plan.update(overrides)
    return plan


def reference_project(directory: Path) -> Path:
    """A project directory with the reference stack file and its plan.json."""
    (directory / "Pulumi.reference.yaml").write_text(REFERENCE_STACK)
    write_plan(directory, reference_plan())
    return directory


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    return reference_project(tmp_path)


def write_plan(project_dir: Path, plan: Mapping[str, Any]) -> Path:
    path = project_dir / "plan.json"
    path.write_text(json.dumps(plan))
    return path


def run_verify(project_dir: Path, executor: FakeExecutor, *args: str) -> int:
    """Against the plan in `project_dir`, one probe at a time so timings and progress are in order."""
    return verify.main(["--stack", "reference", "--plan", str(project_dir / "plan.json"), "--parallel", "1", *args],
                       executor=executor, clock=executor.clock, project_dir=project_dir)


def check_rows(out: str) -> dict[tuple[str, str, str], list[str]]:
    """Probe table rows by (client, target, via): [endpoint, expected, observed, result, seconds]."""
    # Columns are at least two spaces apart; a cell ("no response") may hold one.
    rows = [re.split(r"\s{2,}", line) for line in out.splitlines() if line.startswith(("rds-demo-", "apps"))]
    return {(row[0], row[1], row[2]): row[3:] for row in rows}


def status_rows(out: str) -> dict[tuple[str, str], list[str]]:
    """Status table rows by (object, condition): [result, detail]."""
    rows = [re.split(r"\s{2,}", line, maxsplit=3) for line in out.splitlines()
            if line.startswith(("Gateway ", "ServiceEntry ", "AuthorizationPolicy "))]
    return {(row[0], row[1]): row[2:] for row in rows if len(row) == 4}


# --- the whole run ---------------------------------------------------------------------------------

def test_the_reference_design_passes_every_status_check_and_every_probe(project_dir, capsys):
    code = run_verify(project_dir, FakeExecutor(cluster()))

    out = capsys.readouterr().out
    assert code == 0
    assert {key: row[0] for key, row in status_rows(out).items()} == {
        ("Gateway istio-egress/waypoint", "Programmed"): "PASS",
        ("ServiceEntry istio-egress/postgres-1", "istio.io/WaypointBound"): "PASS",
        ("ServiceEntry istio-egress/postgres-2", "istio.io/WaypointBound"): "PASS",
        ("AuthorizationPolicy istio-egress/postgres-1-allow-nothing", "WaypointAccepted"): "PASS",
        ("AuthorizationPolicy istio-egress/postgres-2-allow-nothing", "WaypointAccepted"): "PASS",
        ("AuthorizationPolicy istio-egress/allow-postgres-1-from-rds-demo-1", "WaypointAccepted"): "PASS",
        ("AuthorizationPolicy istio-egress/allow-postgres-2-from-rds-demo-2", "WaypointAccepted"): "PASS",
    }
    rows = check_rows(out)
    expected_cells = {(namespace, target, via): verdict for (namespace, target), verdict in REFERENCE_MATRIX.items()
                      for via in ("host", "ip")}
    expected_cells |= {(namespace, "1.1.1.1:443", "undeclared"): DENY for namespace in NAMESPACES}
    assert {key: (row[1], row[3]) for key, row in rows.items()} == {key: (verdict, "PASS")
                                                                     for key, verdict in expected_cells.items()}
    assert "17 passed, 0 failed, 0 errors, 0 skipped, 0 reported" in out


def test_each_cell_is_probed_from_the_client_pod_with_pg_isready_through_its_host_and_its_raw_ip(project_dir):
    executor = FakeExecutor(cluster())

    run_verify(project_dir, executor)

    argv, timeout = executor.execs()[0]
    assert argv == ["kubectl", "exec", "-n", "rds-demo-1", "client", "-c", "client", "--",
                    "bash", "-c", probes.PG_ISREADY_SCRIPT, "verify-probe", HOSTS["postgres-1"], "5432"]
    assert timeout == cli.DEFAULT_EXEC_TIMEOUT_SECONDS
    assert executor.dialled() == [
        ("rds-demo-1", HOSTS["postgres-1"]), ("rds-demo-1", LB["postgres-1"]),
        ("rds-demo-1", HOSTS["postgres-2"]), ("rds-demo-1", LB["postgres-2"]), ("rds-demo-1", "1.1.1.1"),
        ("rds-demo-2", HOSTS["postgres-1"]), ("rds-demo-2", LB["postgres-1"]),
        ("rds-demo-2", HOSTS["postgres-2"]), ("rds-demo-2", LB["postgres-2"]), ("rds-demo-2", "1.1.1.1"),
    ]


def test_a_denied_cell_that_connects_through_its_host_fails_and_exits_1(project_dir, capsys):
    code = run_verify(project_dir, FakeExecutor(cluster(host_answers("rds-demo-1", "postgres-2", 0))))

    out = capsys.readouterr().out
    assert code == 1
    row = check_rows(out)[("rds-demo-1", "postgres-2", "host")]
    assert row == [f"{HOSTS['postgres-2']}:5432", DENY, "accepting", "FAIL", "0.25"]
    assert f"FAIL rds-demo-1 -> postgres-2 (host, expected DENY): {HOSTS['postgres-2']}:5432 - accepting connections" in out


def test_a_denied_cell_reached_by_raw_ip_around_the_waypoint_fails_though_its_host_is_denied(project_dir, capsys):
    code = run_verify(project_dir, FakeExecutor(cluster({("rds-demo-2", LB["postgres-1"]): pg_isready(LB["postgres-1"], 0)})))

    rows = check_rows(capsys.readouterr().out)
    assert code == 1
    assert rows[("rds-demo-2", "postgres-1", "host")][3] == "PASS"
    assert rows[("rds-demo-2", "postgres-1", "ip")][2:4] == ["accepting", "FAIL"]


def test_an_allowed_cell_with_no_response_fails(project_dir, capsys):
    code = run_verify(project_dir, FakeExecutor(cluster(host_answers("rds-demo-1", "postgres-1", 2))))

    assert code == 1
    assert check_rows(capsys.readouterr().out)[("rds-demo-1", "postgres-1", "host")][2:4] == ["no response", "FAIL"]


def test_a_probe_that_times_out_is_an_error_never_a_denied_pass_and_honours_the_timeout_option(project_dir, capsys):
    executor = FakeExecutor(cluster({("rds-demo-1", HOSTS["postgres-2"]): CompletedRun(None, timed_out=True)}))

    code = run_verify(project_dir, executor, "--timeout", "30")

    out = capsys.readouterr().out
    assert code == 2
    assert check_rows(out)[("rds-demo-1", "postgres-2", "host")][2:4] == ["-", "ERROR"]
    assert "ERROR rds-demo-1 -> postgres-2 (host, expected DENY): kubectl exec did not finish within 30s" in out
    assert {timeout for _, timeout in executor.execs()} == {30.0}


def test_a_host_that_does_not_resolve_is_an_error_where_pg_isready_would_say_no_response(project_dir, capsys):
    unresolved = CompletedRun(90, "verify-probe: unresolved\n", "command terminated with exit code 90\n")

    code = run_verify(project_dir, FakeExecutor(cluster({("rds-demo-1", HOSTS["postgres-2"]): unresolved})))

    out = capsys.readouterr().out
    assert code == 2
    assert check_rows(out)[("rds-demo-1", "postgres-2", "host")][3] == "ERROR"
    assert f"{HOSTS['postgres-2']} does not resolve in rds-demo-1/client" in out


def test_a_missing_client_pod_makes_its_namespace_s_checks_errors_without_probing_there(project_dir, capsys):
    missing = CompletedRun(1, stderr='Error from server (NotFound): pods "client" not found\n')
    executor = FakeExecutor(cluster(pod_rds_demo_1=missing))

    code = run_verify(project_dir, executor)

    out = capsys.readouterr().out
    assert code == 2
    assert {row[3] for key, row in check_rows(out).items() if key[0] == "rds-demo-1"} == {"ERROR"}
    assert {row[3] for key, row in check_rows(out).items() if key[0] == "rds-demo-2"} == {"PASS"}
    assert "test client pod rds-demo-1/client not found: set ambient-egress:testClients: true and run pulumi up" in out
    assert all(namespace != "rds-demo-1" for namespace, _ in executor.dialled())


def test_a_client_pod_that_is_not_ready_is_not_probed(project_dir, capsys):
    pending = ready_pod("rds-demo-2")
    pending["status"] = {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}

    code = run_verify(project_dir, FakeExecutor(cluster(pod_rds_demo_2=json_run(pending))))

    assert code == 2
    assert "test client pod rds-demo-2/client is not Ready (phase Pending)" in capsys.readouterr().out


# --- status first ----------------------------------------------------------------------------------

def test_a_service_entry_not_bound_fails_naming_the_reason_and_message(project_dir, capsys):
    unbound = bound_service_entry("postgres-2", status="False", reason="WaypointIsNotReady",
                                  message='waypoint "istio-egress/waypoint" is not ready')
    entries = listed(bound_service_entry("postgres-1"), unbound)

    code = run_verify(project_dir, FakeExecutor(cluster(service_entries=entries)))

    out = capsys.readouterr().out
    assert code == 1
    assert status_rows(out)[("ServiceEntry istio-egress/postgres-2", "istio.io/WaypointBound")] == [
        "FAIL", 'istio.io/WaypointBound=False (WaypointIsNotReady: waypoint "istio-egress/waypoint" is not ready)']
    assert "FAIL ServiceEntry istio-egress/postgres-2 istio.io/WaypointBound: istio.io/WaypointBound=False (" in out


@pytest.mark.parametrize("live, detail", [
    (gateway(status="False", reason="AddressNotUsable", message="port 15008 not found"),
     "Programmed=False (AddressNotUsable: port 15008 not found)"),
    (gateway(addresses=()), "Programmed but no status.addresses: istiod binds no ServiceEntry to a waypoint without one"),
], ids=["not-programmed", "no-address"])
def test_a_waypoint_not_programmed_or_without_an_address_fails(project_dir, capsys, live, detail):
    code = run_verify(project_dir, FakeExecutor(cluster(gateway=json_run(live))))

    assert code == 1
    assert status_rows(capsys.readouterr().out)[("Gateway istio-egress/waypoint", "Programmed")] == ["FAIL", detail]


def test_a_missing_waypoint_fails(project_dir, capsys):
    missing = CompletedRun(1, stderr='Error from server (NotFound): gateways.gateway.networking.k8s.io "waypoint" not found\n')

    code = run_verify(project_dir, FakeExecutor(cluster(gateway=missing)))

    assert code == 1
    assert status_rows(capsys.readouterr().out)[("Gateway istio-egress/waypoint", "Programmed")][0] == "FAIL"


@pytest.mark.parametrize("status, reason, message, result", [
    ("False", "TargetNotFound", "not bound", "FAIL"),
    ("True", "PartiallyInvalid", "Invalid targetRefs: istio-egress/gone", "FAIL"),
], ids=["rejected", "partially-invalid"])
def test_a_policy_the_waypoint_does_not_wholly_accept_fails(project_dir, capsys, status, reason, message, result):
    policies = reference_policies()
    policies[0] = accepted(allow_nothing_policy("postgres-1", "istio-egress"), status, reason, message)

    code = run_verify(project_dir, FakeExecutor(cluster(policies=listed(*policies))))

    assert code == 1
    row = status_rows(capsys.readouterr().out)[("AuthorizationPolicy istio-egress/postgres-1-allow-nothing", "WaypointAccepted")]
    assert row == [result, f"WaypointAccepted={status} ({reason}: {message})"]


def test_a_condition_not_reported_yet_is_an_error_not_a_pass(project_dir, capsys):
    unreported = allow_nothing_policy("postgres-1", "istio-egress")
    policies = [unreported, *reference_policies()[1:]]

    code = run_verify(project_dir, FakeExecutor(cluster(policies=listed(*policies))))

    assert code == 2
    row = status_rows(capsys.readouterr().out)[("AuthorizationPolicy istio-egress/postgres-1-allow-nothing", "WaypointAccepted")]
    assert row[0] == "ERROR" and row[1].startswith("no WaypointAccepted condition reported yet")


def test_a_bound_service_entry_for_another_host_than_expected_fails(project_dir, capsys):
    moved = bound_service_entry("postgres-1", host="172.18.255.99.nip.io")

    code = run_verify(project_dir, FakeExecutor(cluster(service_entries=listed(moved, bound_service_entry("postgres-2")))))

    assert code == 1
    row = status_rows(capsys.readouterr().out)[("ServiceEntry istio-egress/postgres-1", "istio.io/WaypointBound")]
    assert row == ["FAIL", f"bound, but it does not declare {HOSTS['postgres-1']}, as plan {project_dir / 'plan.json'} "
                           "expects: what is deployed is not what it describes"]


# --- undeclared destinations -----------------------------------------------------------------------

def test_an_undeclared_destination_reached_under_lockdown_fails(project_dir, capsys):
    code = run_verify(project_dir, FakeExecutor(cluster({("rds-demo-1", "1.1.1.1"): tcp("held open")})))

    out = capsys.readouterr().out
    assert code == 1
    assert check_rows(out)[("rds-demo-1", "1.1.1.1:443", "undeclared")][1:4] == [DENY, "held open", "FAIL"]


def test_an_undeclared_destination_is_reported_not_failed_for_a_client_without_lockdown(project_dir, capsys):
    write_plan(project_dir, reference_plan(otherDestinations={"rds-demo-1": "OPEN", "rds-demo-2": DENY}))

    code = run_verify(project_dir, FakeExecutor(cluster({("rds-demo-1", "1.1.1.1"): tcp("answered")})))

    out = capsys.readouterr().out
    assert code == 0
    assert check_rows(out)[("rds-demo-1", "1.1.1.1:443", "undeclared")][1:4] == ["OPEN", "answered", "INFO"]
    assert "1 reported" in out


def test_the_undeclared_destination_is_configurable_and_can_be_left_out(project_dir):
    responses = cluster()
    for namespace in NAMESPACES:
        responses[("exec", "-n", namespace, "verify-probe", "9.9.9.9")] = UNDECLARED_BLOCKED
    executor = FakeExecutor(responses)
    run_verify(project_dir, executor, "--undeclared", "9.9.9.9:53")
    assert [argv[-2:] for argv, _ in executor.execs() if "9.9.9.9" in argv] == [["9.9.9.9", "53"]] * 2

    executor = FakeExecutor(cluster())
    run_verify(project_dir, executor, "--no-undeclared")
    assert all(address != "1.1.1.1" for _, address in executor.dialled())


def test_undeclared_passes_that_nobody_confirmed_reachable_are_flagged(project_dir, capsys):
    run_verify(project_dir, FakeExecutor(cluster()))

    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert notes == ["note: no client reached 1.1.1.1:443, so its blocked results may mean the cluster cannot reach it at "
                     "all, not that the egress lockdown stopped it; check with a namespace that has no lockdown"]


def test_denials_are_flagged_unconfirmed_when_no_client_reached_the_target(project_dir, capsys):
    down = {("rds-demo-2", address): pg_isready(address, 2) for address in (HOSTS["postgres-2"], LB["postgres-2"])}

    code = run_verify(project_dir, FakeExecutor(cluster(down)))

    assert code == 1
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: no client connected")]
    assert notes == ["note: no client connected to postgres-2, so its DENY passes show it unreachable, not necessarily "
                     "denied; check that it is up"]


# --- HTTP services ---------------------------------------------------------------------------------

HTTPBIN = {"name": "httpbin", "kind": "service", "serviceEntry": "istio-egress/httpbin", "hosts": ["httpbin.org"],
           "addresses": [], "ports": [{"number": 80, "protocol": "HTTP", "name": "http"}]}


def http_plan(samples: list[dict[str, str]], verdict: str = "LIMITED") -> dict[str, Any]:
    return reference_plan(clients=["apps"], targets=[HTTPBIN], verdicts={"apps": {"istio-egress/httpbin": verdict}},
                          otherDestinations={}, sampleRequests=samples)


def http_cluster(**answers: CompletedRun) -> dict[tuple[str, ...], Answer]:
    """`apps` with a client, httpbin's ServiceEntry bound; answers keyed by request, e.g. GET_get."""
    responses = reachable_cluster()
    responses[("get", GATEWAY_RESOURCE, "waypoint")] = json_run(gateway())
    httpbin = service_entry("httpbin", "istio-egress", host="httpbin.org", addresses=None,
                            ports=[ServicePort.http(80, name="http")], waypoint=WAYPOINT)
    responses[("get", SERVICE_ENTRY_RESOURCE)] = listed(with_condition(httpbin, "istio.io/WaypointBound"))
    responses[("get", POLICY_RESOURCE)] = listed(accepted(allow_nothing_policy("httpbin", "istio-egress")))
    responses[("get", "pod", "client", "-n", "apps")] = json_run(ready_pod("apps"))
    for request, run in answers.items():
        method, _, path = request.partition("_")
        responses[("exec", "-n", "apps", "verify-probe", "httpbin.org", "80", method, f"/{path}")] = run
    return responses


def test_http_sample_requests_are_sent_with_their_method_and_path_and_judged_by_the_waypoint_s_denial(project_dir, capsys):
    write_plan(project_dir, http_plan([
        {"client": "apps", "target": "httpbin", "method": "GET", "path": "/get", "declared": ALLOW, "computed": ALLOW},
        {"client": "apps", "target": "httpbin", "method": "POST", "path": "/post", "declared": DENY, "computed": DENY},
    ]))
    executor = FakeExecutor(http_cluster(GET_get=http("HTTP/1.1 200 OK", "{}"), POST_post=RBAC_DENIED))

    code = run_verify(project_dir, executor)

    out = capsys.readouterr().out
    assert code == 0
    rows = check_rows(out)
    assert rows[("apps", "httpbin", "GET /get")][1:4] == [ALLOW, "HTTP 200", "PASS"]
    assert rows[("apps", "httpbin", "POST /post")][1:4] == [DENY, "403 RBAC: access denied", "PASS"]
    assert ("apps", "httpbin", "host") not in rows  # LIMITED: its requests check it
    assert [argv[-6:] for argv, _ in executor.execs()] == [
        ["verify-probe", "httpbin.org", "80", "GET", "/get", "httpbin.org"],
        ["verify-probe", "httpbin.org", "80", "POST", "/post", "httpbin.org"],
    ]


def test_a_denied_request_the_waypoint_lets_through_fails(project_dir, capsys):
    write_plan(project_dir, http_plan([
        {"client": "apps", "target": "httpbin", "method": "POST", "path": "/post", "declared": DENY, "computed": DENY}]))

    code = run_verify(project_dir, FakeExecutor(http_cluster(POST_post=http("HTTP/1.1 200 OK", "{}"))))

    assert code == 1
    assert check_rows(capsys.readouterr().out)[("apps", "httpbin", "POST /post")][2:4] == ["HTTP 200", "FAIL"]


def test_a_limited_cell_without_sample_requests_is_skipped_never_passed(project_dir, capsys):
    write_plan(project_dir, http_plan([]))

    code = run_verify(project_dir, FakeExecutor(http_cluster()))

    out = capsys.readouterr().out
    assert code == 2  # nothing was proven
    assert check_rows(out)[("apps", "httpbin", "host")][1:4] == ["LIMITED", "-", "SKIP"]
    assert "LIMITED: only some HTTP requests are allowed; declare sampleRequests to check them" in out


def test_a_plain_http_cell_is_probed_with_a_request_and_the_waypoint_s_403_is_its_denial(project_dir, capsys):
    write_plan(project_dir, http_plan([], verdict=DENY))

    code = run_verify(project_dir, FakeExecutor(http_cluster(GET_=RBAC_DENIED)))

    assert code == 0
    assert check_rows(capsys.readouterr().out)[("apps", "httpbin", "host")][1:4] == [DENY, "403 RBAC: access denied", "PASS"]


# --- running ---------------------------------------------------------------------------------------

def test_probes_run_in_parallel_up_to_the_bound(project_dir):
    bound = 3
    arrived = threading.Barrier(bound, timeout=30)  # fails the test, never hangs it, if fewer run at once
    active, peak, lock = [0], [0], threading.Lock()

    def concurrent(run: CompletedRun) -> Callable[[list[str]], CompletedRun]:
        def answer(argv: list[str]) -> CompletedRun:
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
                first = len(seen) < bound
                seen.append(argv)
            if first:
                arrived.wait()
            with lock:
                active[0] -= 1
            return run
        return answer

    seen: list[list[str]] = []
    responses = {key: concurrent(run) if "exec" in key and isinstance(run, CompletedRun) else run
                 for key, run in cluster().items()}
    executor = FakeExecutor(responses)

    code = verify.main(["--stack", "reference", "--plan", str(project_dir / "plan.json"), "--parallel", str(bound)],
                       executor=executor, clock=executor.clock, project_dir=project_dir)

    assert code == 0
    assert peak[0] == bound and len(seen) == 10


def test_progress_goes_to_stderr_as_checks_finish_and_the_tables_to_stdout(project_dir, capsys):
    run_verify(project_dir, FakeExecutor(cluster()))

    output = capsys.readouterr()
    err = output.err.splitlines()
    plan = project_dir / "plan.json"
    assert err[0] == f"verify: stack 'reference' on context 'kind-ambient-egress', expectations from plan {plan}"
    assert err[1] == "[status] Gateway istio-egress/waypoint Programmed ... PASS"
    assert err[8:11] == [
        "[1/10] rds-demo-1 -> postgres-1 (host) ... PASS (0.25s)",
        "[2/10] rds-demo-1 -> postgres-1 (ip) ... PASS (0.25s)",
        "[3/10] rds-demo-1 -> postgres-2 (host) ... PASS (0.25s)",
    ]
    assert output.out.splitlines()[0].split() == ["OBJECT", "CONDITION", "RESULT", "DETAIL"]
    # Seven kubectl calls before the probes (context, readiness, three reads, two pods), one per probe.
    assert "in 4.25s" in output.out


def test_json_output_is_the_whole_result_on_stdout(project_dir, capsys):
    timed_out = {("rds-demo-1", HOSTS["postgres-2"]): CompletedRun(None, timed_out=True)}
    code = run_verify(project_dir, FakeExecutor(cluster(timed_out)), "--json")

    report = json.loads(capsys.readouterr().out)
    assert code == report["exitCode"] == 2
    assert report["stack"] == "reference" and report["context"] == "kind-ambient-egress" and report["error"] is None
    assert report["source"] == f"plan {project_dir / 'plan.json'}"
    assert report["summary"] == {"passed": 16, "failed": 0, "errors": 1, "skipped": 0, "reported": 0, "seconds": 4.25}
    assert report["status"][0] == {"object": "Gateway istio-egress/waypoint", "condition": "Programmed", "result": "PASS",
                                   "detail": "Programmed, address 10.96.0.50"}
    assert report["checks"][2] == {
        "client": "rds-demo-1", "namespace": "rds-demo-1", "target": "postgres-2", "via": "host",
        "endpoint": f"{HOSTS['postgres-2']}:5432", "expected": DENY, "observed": "-", "result": "ERROR", "seconds": 0.25,
        "detail": "kubectl exec did not finish within 20s",
    }
    assert report["notes"][0].startswith("no client reached 1.1.1.1:443")


# --- could not verify ------------------------------------------------------------------------------

@pytest.mark.parametrize("responses, message", [
    ({("config", "current-context"): CompletedRun(1, stderr="error: current-context is not set\n")},
     "no kubeconfig/current context: error: current-context is not set"),
    ({(): CompletedRun(127, stderr="kubectl: command not found")}, "kubectl is not installed or not on PATH"),
    ({**reachable_cluster(), ("get", "--raw", "/readyz"): CompletedRun(
        1, stderr="The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?\n")},
     "cluster of context 'kind-ambient-egress' is not reachable: The connection to the server 127.0.0.1:6443 was refused"),
    ({**reachable_cluster(), ("get", "--raw", "/readyz"): CompletedRun(None, timed_out=True)},
     "cluster of context 'kind-ambient-egress' is not reachable: no answer within 10s"),
], ids=["no-kubeconfig", "no-kubectl", "cluster-refuses", "cluster-silent"])
def test_without_a_usable_cluster_it_stops_with_exit_2_a_clear_message_and_no_pass(project_dir, capsys, responses, message):
    executor = FakeExecutor(responses)

    code = run_verify(project_dir, executor)

    output = capsys.readouterr()
    assert code == 2
    assert message in output.err
    assert "PASS" not in output.out + output.err
    assert executor.execs() == []


def test_json_output_reports_why_verification_could_not_run(project_dir, capsys):
    responses = {("config", "current-context"): CompletedRun(1, stderr="error: current-context is not set\n")}

    code = run_verify(project_dir, FakeExecutor(responses), "--json")

    report = json.loads(capsys.readouterr().out)
    assert code == report["exitCode"] == 2
    assert report["checks"] == [] and report["error"].startswith("no kubeconfig/current context")


def test_an_unknown_context_stops_with_exit_2_naming_the_known_ones(project_dir, capsys):
    responses = {("config", "get-contexts", "-o", "name"): CompletedRun(0, "kind-ambient\n")}

    code = run_verify(project_dir, FakeExecutor(responses), "--context", "prod")

    assert code == 2
    assert "no kubeconfig context 'prod' (known contexts: kind-ambient)" in capsys.readouterr().err


def test_the_stack_s_kubernetes_context_applies_to_every_kubectl_command(project_dir):
    (project_dir / "Pulumi.reference.yaml").write_text(REFERENCE_STACK + "  kubernetes:context: kind-ambient-egress\n")
    responses = {**cluster(), ("config", "get-contexts", "-o", "name"): CompletedRun(0, "kind-other\nkind-ambient-egress\n")}
    del responses[("config", "current-context")]
    executor = FakeExecutor(responses)

    code = run_verify(project_dir, executor)

    assert code == 0
    assert all(argv[:3] == ["kubectl", "--context", "kind-ambient-egress"] for argv, _ in executor.calls)


def test_the_context_option_overrides_the_stack_s(project_dir, capsys):
    (project_dir / "Pulumi.reference.yaml").write_text(REFERENCE_STACK + "  kubernetes:context: kind-ambient-egress\n")
    responses = {**cluster(), ("config", "get-contexts", "-o", "name"): CompletedRun(0, "kind-other\nkind-ambient-egress\n")}
    del responses[("config", "current-context")]
    executor = FakeExecutor(responses)

    run_verify(project_dir, executor, "--context", "kind-other")

    assert all(argv[:3] == ["kubectl", "--context", "kind-other"] for argv, _ in executor.calls)
    assert "on context 'kind-other'" in capsys.readouterr().err


def test_a_missing_stack_file_stops_with_exit_2_before_touching_the_cluster(project_dir, capsys):
    executor = FakeExecutor({})

    code = verify.main(["--stack", "nope"], executor=executor, clock=FakeClock(), project_dir=project_dir)

    assert code == 2
    assert "no stack file Pulumi.nope.yaml" in capsys.readouterr().err
    assert executor.calls == []


@pytest.mark.parametrize("args, message", [
    (["--timeout", "12"], "argument --timeout: must exceed the probes' own 12s wait (got 12)"),
    (["--timeout", "soon"], "argument --timeout: must be a number of seconds (got 'soon')"),
    (["--parallel", "0"], "argument --parallel: must be a whole number from 1 to 32 (got '0')"),
    (["--undeclared", "1.1.1.1"], "argument --undeclared: must be HOST:PORT, e.g. 1.1.1.1:443 (got '1.1.1.1')"),
    (["--undeclared", "1.1.1.1:443", "--no-undeclared"], "not allowed with argument --undeclared"),
], ids=["timeout-within-probe-wait", "timeout-not-a-number", "parallel-zero", "undeclared-without-port", "both-undeclared-flags"])
def test_a_bad_option_is_refused_naming_it_and_the_fix(capsys, args, message):
    with pytest.raises(SystemExit) as stopped:
        cli.parse_args(args)

    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_live_cluster_verifies_the_dev_stack_when_one_is_reachable(capsys):
    """The real thing: real kubectl, real pulumi, real cluster. Skipped, with the reason, where none answers."""
    from tools.verify.kubectl import CannotVerify, Kubectl, preflight
    from tools.verify.process import SubprocessExecutor

    try:
        context = preflight(Kubectl(SubprocessExecutor(), cli.stack_context("dev", ROOT)))
    except CannotVerify as reason:
        pytest.skip(f"no live cluster: {reason}")

    code = verify.main(["--stack", "dev"])

    output = capsys.readouterr()
    if code == 2:
        pytest.skip(f"context {context!r} answers but the dev stack could not be verified:\n{output.err}{output.out}")
    assert code == 0, output.out
