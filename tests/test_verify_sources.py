"""Where `make verify` takes its expectations from: the deployed stack's outputs (`pulumi stack
output --json`, through the same fake executor as kubectl) or a plan.json, and every way either can
be wrong or incomplete. Incomplete means skipped with a note, never passed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.manifests import service_entry
from components.values import ServicePort
from tools import verify
from tools.verify import probes
from tools.verify.process import CompletedRun
from tools.verify.status import GATEWAY_RESOURCE

from .test_verify import (
    ALLOW,
    DENY,
    HOSTS,
    LB,
    NAMESPACES,
    WAYPOINT,
    FakeExecutor,
    check_rows,
    cluster,
    database_target,
    gateway,
    json_run,
    listed,
    pg_isready,
    ready_pod,
    reference_plan,
    reference_project,
    run_verify,
    status_rows,
    tcp,
    with_condition,
    write_plan,
)

PULUMI_OUTPUT = ("pulumi", "stack", "output")


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    return reference_project(tmp_path)


def reference_outputs(**extra: Any) -> dict[str, Any]:
    """What `pulumi stack output --json` prints for seed 000's design; `extra` adds the outputs the
    verifier asks for beyond today's (targets, egressLockdown, sampleRequests)."""
    outputs = {
        "egressNamespace": "istio-egress", "waypoint": "waypoint", "istioVersion": "1.30",
        "databases": {name: {"host": HOSTS[name], "port": 5432} for name in LB}, "services": {},
        "credentials": "[secret]",
        "accessMatrix": {"rds-demo-1": {"postgres-1": ALLOW}, "rds-demo-2": {"postgres-2": ALLOW}},
    }
    outputs.update(extra)
    return outputs


FULL_OUTPUTS = {
    "targets": [database_target(name) for name in LB],
    "egressLockdown": {namespace: {"enabled": True, "allowCidrs": []} for namespace in NAMESPACES},
    "sampleRequests": [],
}


def from_outputs(project_dir: Path, outputs: Any, *args: str, responses: dict | None = None) -> tuple[int, FakeExecutor]:
    answers = cluster() if responses is None else responses
    answers[PULUMI_OUTPUT] = outputs if isinstance(outputs, CompletedRun) else json_run(outputs)
    executor = FakeExecutor(answers)
    code = verify.main(["--stack", "reference", "--parallel", "1", *args], executor=executor, clock=executor.clock,
                       project_dir=project_dir)
    return code, executor


# --- stack outputs ---------------------------------------------------------------------------------

def test_the_deployed_stack_s_outputs_are_read_with_pulumi_in_the_project_and_prove_the_same_cells(project_dir, capsys):
    code, executor = from_outputs(project_dir, reference_outputs(**FULL_OUTPUTS))

    out = capsys.readouterr().out
    assert code == 0
    assert executor.calls[0] == (["pulumi", "stack", "output", "--json", "--non-interactive", "--stack", "reference",
                                  "--cwd", str(project_dir)], 120)
    assert {key: row[1] for key, row in check_rows(out).items()} == {
        **{(namespace, target, via): verdict for (namespace, target), verdict in {
            ("rds-demo-1", "postgres-1"): ALLOW, ("rds-demo-1", "postgres-2"): DENY,
            ("rds-demo-2", "postgres-1"): DENY, ("rds-demo-2", "postgres-2"): ALLOW}.items() for via in ("host", "ip")},
        **{(namespace, "1.1.1.1:443", "undeclared"): DENY for namespace in NAMESPACES},
    }
    assert "17 passed" in out


def test_today_s_outputs_prove_every_cell_through_its_host_and_say_what_they_cannot_check(project_dir, capsys):
    code, executor = from_outputs(project_dir, reference_outputs())

    out = capsys.readouterr().out
    rows = check_rows(out)
    assert code == 0
    assert {key: row[3] for key, row in rows.items() if key[2] == "host"} == dict.fromkeys(
        [(namespace, target, "host") for namespace in NAMESPACES for target in LB], "PASS")
    assert not any(via == "ip" for _, _, via in rows)  # no raw address without the targets output
    assert {row[3] for key, row in rows.items() if key[2] == "undeclared"} == {"SKIP"}
    assert all(address != "1.1.1.1" for _, address in executor.dialled())
    notes = [line for line in out.splitlines() if line.startswith("note: stack output")]
    assert notes == [
        "note: stack output targets is absent: raw-IP connections are not checked, and services' ports, whose protocols "
        "only it gives, are skipped",
        "note: stack output sampleRequests is absent: HTTP sample requests and LIMITED cells are not checked",
        "note: stack output egressLockdown is absent: undeclared destinations are not checked",
    ]


def test_a_service_whose_port_protocols_the_outputs_do_not_give_is_skipped_not_guessed(project_dir, capsys):
    outputs = reference_outputs(services={"httpbin": {"host": "httpbin.org", "ports": [80]}})
    outputs["accessMatrix"]["rds-demo-1"]["httpbin"] = ALLOW

    from_outputs(project_dir, outputs)

    out = capsys.readouterr().out
    assert check_rows(out)[("rds-demo-1", "httpbin", "host")][1:4] == [ALLOW, "-", "SKIP"]
    assert ("SKIP rds-demo-1 -> httpbin (host, expected ALLOW): the outputs of stack 'reference' does not say which "
            "protocol port 80 speaks; export the targets output to check it") in out


@pytest.mark.parametrize("lockdown, expected", [
    ({"enabled": False}, "OPEN"),
    ({"enabled": True, "allowCidrs": ["1.1.1.0/24"]}, "OPEN (1.1.1.1 is in the lockdown's allowCidrs (1.1.1.0/24))"),
], ids=["no-lockdown", "destination-in-allow-cidrs"])
def test_an_undeclared_destination_the_lockdown_lets_through_is_reported_not_failed(project_dir, capsys, lockdown, expected):
    outputs = reference_outputs(**{**FULL_OUTPUTS, "egressLockdown": {"rds-demo-1": lockdown, "rds-demo-2": {"enabled": True}}})

    code, _ = from_outputs(project_dir, outputs, responses=cluster({("rds-demo-1", "1.1.1.1"): tcp("answered")}))

    rows = check_rows(capsys.readouterr().out)
    assert code == 0
    assert rows[("rds-demo-1", "1.1.1.1:443", "undeclared")][1:4] == [expected, "answered", "INFO"]
    assert rows[("rds-demo-2", "1.1.1.1:443", "undeclared")][1:4] == [DENY, "closed", "PASS"]


def test_the_client_pod_s_service_account_picks_its_row_and_rows_no_pod_speaks_for_are_named(project_dir, capsys):
    outputs = reference_outputs(accessMatrix={"rds-demo-1": {"postgres-1": ALLOW}, "rds-demo-2": {"postgres-2": ALLOW},
                                              "rds-demo-1/sa/reporting": {"postgres-2": ALLOW}})
    responses = cluster({("rds-demo-1", HOSTS["postgres-2"]): pg_isready(HOSTS["postgres-2"], 0),
                         ("rds-demo-1", HOSTS["postgres-1"]): pg_isready(HOSTS["postgres-1"], 2)},
                        pod_rds_demo_1=json_run(ready_pod("rds-demo-1", service_account="reporting")))

    code, _ = from_outputs(project_dir, outputs, responses=responses)

    out = capsys.readouterr().out
    rows = check_rows(out)
    assert code == 0
    assert rows[("rds-demo-1/sa/reporting", "postgres-1", "host")][1:4] == [DENY, "no response", "PASS"]
    assert rows[("rds-demo-1/sa/reporting", "postgres-2", "host")][1:4] == [ALLOW, "accepting", "PASS"]
    assert not any(client == "rds-demo-1" for client, _, _ in rows)
    assert "note: no test client runs as rds-demo-1: a namespace's client pod speaks for one identity" in out


@pytest.mark.parametrize("run, message", [
    (CompletedRun(127, stderr="pulumi: command not found"),
     "the pulumi CLI is not installed or not on PATH (https://www.pulumi.com/docs/install/), or verify against a plan with "
     "--plan build/plan/reference/plan.json"),
    (CompletedRun(255, stderr="error: no stack named 'reference' found\n"),
     "`pulumi stack output --stack reference` failed: error: no stack named 'reference' found. Is the stack deployed, and "
     "PULUMI_BACKEND_URL (or pulumi login) pointing at its backend?"),
    (CompletedRun(None, timed_out=True), "`pulumi stack output` gave no answer within 120s"),
    (CompletedRun(0, "{}"), "stack 'reference' has no outputs: run `pulumi up --stack reference` first"),
    (CompletedRun(0, "warning: something\n"), "`pulumi stack output --json` printed no JSON"),
    (json_run({"egressNamespace": "istio-egress"}),
     "stack 'reference' outputs: accessMatrix missing; run `pulumi up --stack reference` with the current program"),
    (json_run(reference_outputs(accessMatrix={"rds-demo-1": {"postgres-1": "MAYBE"}})),
     "stack 'reference' outputs: accessMatrix.rds-demo-1.postgres-1 is 'MAYBE', expected one of ALLOW, DENY, LIMITED"),
    (json_run(reference_outputs(databases={"postgres-1": {"host": HOSTS["postgres-1"], "port": 0}})),
     "stack 'reference' outputs: databases.postgres-1.port must be a port number 1-65535 (got 0)"),
    (json_run(reference_outputs(egressLockdown={"rds-demo-1": {"enabled": True, "allowCidrs": ["10.0.0.0/40"]}})),
     "stack 'reference' outputs: egressLockdown.rds-demo-1.allowCidrs[0] is no IPv4 CIDR (got '10.0.0.0/40')"),
    (json_run({k: v for k, v in reference_outputs(egressGateway="istio-egressgateway.istio-system").items() if k != "waypoint"}),
     "stack 'reference' runs in sidecar mode (it exports egressGateway, no waypoint): make verify proves ambient stacks"),
], ids=["no-pulumi", "pulumi-fails", "pulumi-silent", "no-outputs", "not-json", "no-matrix", "bad-verdict", "bad-port",
        "bad-cidr", "sidecar-mode"])
def test_unusable_stack_outputs_stop_before_the_cluster_is_touched(project_dir, capsys, run, message):
    code, executor = from_outputs(project_dir, run, responses={})

    assert code == 2
    assert message in capsys.readouterr().err
    assert [argv[0] for argv, _ in executor.calls] == ["pulumi"]


# --- plan.json --------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    (None, "no plan file {plan}: run `make plan STACK=<stack>` first, or drop --plan"),
    ("{not json", "{plan} is not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); "
                  "re-run `make plan` to write {plan} again"),
    (json.dumps([1]), "{plan}: the document must be a map (got list)"),
    (json.dumps(reference_plan(format="ambient-egress.plan/0")),
     "{plan}: format is 'ambient-egress.plan/0', expected 'ambient-egress.plan/1'"),
    (json.dumps({k: v for k, v in reference_plan().items() if k not in ("verdicts", "clients")}),
     "{plan}: clients, verdicts missing"),
    (json.dumps(reference_plan(verdicts={"rds-demo-1": {"istio-egress/postgres-1": "YES"}})),
     "{plan}: verdicts.rds-demo-1.istio-egress/postgres-1 is 'YES', expected one of ALLOW, BYPASS, DENY, LIMITED, OPEN, "
     "UNDECIDED"),
    (json.dumps(reference_plan(targets=[{**database_target("postgres-1"), "hosts": "x"}])),
     "{plan}: targets[0].hosts must be a list (got str)"),
    (json.dumps(reference_plan(stack="dev")),
     "{plan} is the plan of stack 'dev', not 'reference': pass build/plan/reference/plan.json, or --stack dev"),
], ids=["missing", "not-json", "not-a-map", "format", "missing-keys", "bad-verdict", "bad-hosts", "other-stack"])
def test_an_unusable_plan_stops_with_exit_2_naming_the_file_and_the_fix(project_dir, capsys, content, message):
    path = project_dir / "plan.json"
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    executor = FakeExecutor({})

    code = run_verify(project_dir, executor)

    assert code == 2
    assert message.format(plan=path) in capsys.readouterr().err
    assert executor.calls == []


@pytest.mark.parametrize("plan", [
    reference_plan(targets=[{**database_target("postgres-1"), "hosts": ["203.0.113.10.nip.io"], "addresses": ["203.0.113.10"]},
                            database_target("postgres-2")]),
    reference_plan(placeholderAddresses={"postgres-1": "203.0.113.10"}),
], ids=["documentation-range", "named-by-the-plan"])
def test_a_plan_with_placeholder_addresses_cannot_verify_those_targets_and_says_how_to_fix_it(project_dir, capsys, plan):
    write_plan(project_dir, plan)

    code = run_verify(project_dir, FakeExecutor(cluster()))

    out = capsys.readouterr().out
    rows = check_rows(out)
    assert code == 2
    assert {row[3] for key, row in rows.items() if key[1] == "postgres-1"} == {"ERROR"}
    assert ("its address 203.0.113.10 is a placeholder `make plan` wrote, not its LoadBalancer's: re-run make plan with "
            "--lb postgres-1=<EXTERNAL-IP>, or verify against the stack outputs") in out
    # What the live ServiceEntry serves is not held against a placeholder.
    assert status_rows(out)[("ServiceEntry istio-egress/postgres-1", "istio.io/WaypointBound")][0] == "PASS"


def test_a_service_entry_of_several_ports_is_judged_port_by_port(project_dir, capsys):
    two_ports = {**database_target("postgres-1"), "ports": [{"number": 5432, "protocol": "TCP", "name": "tcp-postgres"},
                                                            {"number": 9187, "protocol": "TCP", "name": "tcp-metrics"}]}
    write_plan(project_dir, reference_plan(
        clients=["rds-demo-1"], targets=[two_ports], otherDestinations={},
        verdicts={"rds-demo-1": {"istio-egress/postgres-1:5432": ALLOW, "istio-egress/postgres-1:9187": DENY}}))
    responses = cluster({("rds-demo-1", address): tcp("closed") for address in (HOSTS["postgres-1"], LB["postgres-1"])})
    for address in (HOSTS["postgres-1"], LB["postgres-1"]):
        responses[("exec", "-n", "rds-demo-1", "verify-probe", address, "5432")] = pg_isready(address, 0)
        responses[("exec", "-n", "rds-demo-1", "verify-probe", address, "9187")] = tcp("closed")
        del responses[("exec", "-n", "rds-demo-1", "verify-probe", address)]

    code = run_verify(project_dir, FakeExecutor(responses))

    rows = check_rows(capsys.readouterr().out)
    assert code == 0
    assert rows[("rds-demo-1", "postgres-1:5432", "host")][1:4] == [ALLOW, "accepting", "PASS"]
    assert rows[("rds-demo-1", "postgres-1:9187", "host")][1:4] == [DENY, "closed", "PASS"]


def test_an_open_cell_must_connect_and_cells_the_plan_cannot_judge_are_skipped(project_dir, capsys):
    write_plan(project_dir, reference_plan(verdicts={
        "rds-demo-1": {"istio-egress/postgres-1": "OPEN", "istio-egress/postgres-2": "BYPASS"},
        "rds-demo-2": {"istio-egress/postgres-1": "UNDECIDED"},
    }))
    responses = cluster({("rds-demo-1", HOSTS["postgres-1"]): pg_isready(HOSTS["postgres-1"], 2)})

    code = run_verify(project_dir, FakeExecutor(responses))

    out = capsys.readouterr().out
    rows = check_rows(out)
    assert code == 1
    assert rows[("rds-demo-1", "postgres-1", "host")][1:4] == ["OPEN", "no response", "FAIL"]
    assert rows[("rds-demo-1", "postgres-2", "host")][1:4] == ["BYPASS", "-", "SKIP"]
    assert rows[("rds-demo-2", "postgres-1", "ip")][1:4] == ["UNDECIDED", "-", "SKIP"]
    assert rows[("rds-demo-2", "postgres-2", "host")][1:4] == ["-", "-", "SKIP"]  # the plan gives no verdict
    assert "BYPASS: the plan found a way around the waypoint; fix its findings, then verify" in out


def test_a_plan_that_names_no_waypoint_has_every_project_waypoint_in_the_egress_namespace_checked(project_dir, capsys):
    plan = reference_plan()
    del plan["waypoint"]
    write_plan(project_dir, plan)
    responses = cluster()
    del responses[("get", GATEWAY_RESOURCE, "waypoint")]
    responses[("get", GATEWAY_RESOURCE, "-n", "istio-egress", "-l", "app.kubernetes.io/part-of=ambient-egress")] = listed(
        gateway(status="False", reason="Invalid", message="no class"))

    code = run_verify(project_dir, FakeExecutor(responses))

    out = capsys.readouterr().out
    assert code == 1
    assert status_rows(out)[("Gateway istio-egress/waypoint", "Programmed")] == ["FAIL", "Programmed=False (Invalid: no class)"]
    assert f"note: {project_dir / 'plan.json'} names no waypoint" in out


def test_a_database_port_that_names_no_engine_is_probed_as_postgresql_and_another_engine_s_as_plain_tcp(project_dir):
    pgbouncer = {"name": "reporting", "kind": "database", "serviceEntry": "istio-egress/reporting",
                 "hosts": ["reporting.example.com"], "ports": [{"number": 6432, "protocol": "TCP", "name": "tcp-6432"}]}
    mysql = {"name": "sessions", "kind": "database", "serviceEntry": "istio-egress/sessions",
             "hosts": ["sessions.example.com"], "ports": [{"number": 3306, "protocol": "TCP", "name": "tcp-mysql"}]}
    write_plan(project_dir, reference_plan(clients=["rds-demo-1"], targets=[pgbouncer, mysql], otherDestinations={}, verdicts={
        "rds-demo-1": {"istio-egress/reporting": ALLOW, "istio-egress/sessions": DENY}}))
    live = [with_condition(service_entry(target["name"], "istio-egress", host=target["hosts"][0], addresses=None,
                                         ports=[ServicePort.tcp(target["ports"][0]["number"])], waypoint=WAYPOINT),
                           "istio.io/WaypointBound") for target in (pgbouncer, mysql)]
    responses = cluster({("rds-demo-1", "reporting.example.com"): pg_isready("reporting.example.com", 0),
                         ("rds-demo-1", "sessions.example.com"): tcp("closed")}, service_entries=listed(*live))
    executor = FakeExecutor(responses)

    code = run_verify(project_dir, executor)

    scripts = {argv[argv.index("verify-probe") + 1]: argv[argv.index("bash") + 2] for argv, _ in executor.execs()}
    assert code == 0
    assert scripts == {"reporting.example.com": probes.PG_ISREADY_SCRIPT, "sessions.example.com": probes.TCP_SCRIPT}
