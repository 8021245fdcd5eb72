"""The sidecar rendering through the analysis: it gives what the grants declare, with no finding, and
moving a stack from sidecars to ambient (or back) changes no cell (issue 15's migration proof)."""

from __future__ import annotations

import json

import pytest
import yaml

from analysis import Decision, MeshIndex, access_matrix, analyze
from analysis.matrix import client_identity
from stack import parse_config
from stack.access import access_matrix as declared_matrix
from tools.plan.__main__ import main as plan_main
from tools.plan.diff import EXIT_PASSED

from .support import ROOT, SEED_000_TABLE, dev_values, run, stack_values

# Several databases (a stand-in, one by IP, one by DNS name on another port), an HTTP service granted
# whole to one account and for GET /get to everyone else, a TLS service granted by service account.
GENERATED = {
    "databases": [{"name": "postgres-1", "port": 5432}, {"name": "orders", "address": "10.20.30.40"},
                  {"name": "billing", "address": "billing.databases.example.com", "port": 6432}],
    "services": [
        {"name": "httpbin", "host": "httpbin.org", "ports": [{"number": 80, "protocol": "HTTP"}], "tlsOrigination": True,
         "sampleRequests": [{"method": "GET", "path": "/get"}, {"method": "POST", "path": "/post"}]},
        {"name": "api", "host": "api.example.com", "ports": [{"number": 443, "protocol": "TLS"}]},
    ],
    "grants": [
        {"namespace": "apps", "databases": ["postgres-1"],
         "services": [{"name": "httpbin", "serviceAccounts": ["admin"]},
                      {"name": "httpbin", "methods": ["GET"], "paths": ["/get"]}]},
        {"namespace": "shop", "databases": ["orders"], "services": ["api"], "serviceAccounts": ["checkout"]},
        {"namespace": "finance", "databases": ["billing", "orders"]},
    ],
}
GENERATED_LOAD_BALANCERS = {"postgres-1": {"ip": "203.0.113.10"}}


def sidecar_manifests(values: dict, load_balancers: dict | None = None) -> list[dict]:
    return run({**values, "dataplane": "sidecar"}, load_balancers).applied()


def test_the_dev_stack_in_sidecar_mode_gives_seed_000s_table_with_no_finding():
    manifests = sidecar_manifests(dev_values())
    assert analyze(manifests) == []
    matrix = access_matrix(manifests)
    assert [verdict.bypasses for _, _, verdict in matrix.entries()] == [()] * 4
    assert matrix.to_dict()["cells"] == SEED_000_TABLE


@pytest.mark.parametrize(("values", "load_balancers"), [
    pytest.param(stack_values("prod"), {}, id="prod"),
    pytest.param(GENERATED, GENERATED_LOAD_BALANCERS, id="generated"),
])
def test_a_stack_in_sidecar_mode_gives_its_declared_grants_with_no_finding(values, load_balancers):
    manifests = sidecar_manifests(values, load_balancers)
    assert analyze(manifests, istio_version=values.get("istio", {}).get("version", "1.30")) == []
    declared = declared_matrix(parse_config(values))
    matrix = access_matrix(MeshIndex(manifests), clients=declared)
    by_target = {client: {d.service_entry.name: matrix.decision(client, d.label).value for d in matrix.destinations}
                 for client in declared}
    assert by_target == declared


def write_stack(tmp_path, name: str, values: dict) -> str:
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": {f"ambient-egress:{key}": value for key, value in values.items()}}))
    return str(path)


STACKS = {"dev": None, "prod": None, "generated": GENERATED}


def config_of(tmp_path, stack: str) -> list[str]:
    values = STACKS[stack]
    return ["--config", write_stack(tmp_path, stack, values)] if values else ["--config", str(ROOT / f"Pulumi.{stack}.yaml")]


def lb_of(stack: str) -> list[str]:
    return ["--lb", "postgres-1=203.0.113.10"] if stack == "generated" else []


@pytest.mark.parametrize("stack", ["dev", "prod", "generated"])
def test_make_plan_in_sidecar_mode_finds_no_difference_from_the_declaration(tmp_path, capsys, stack):
    code = plan_main([*config_of(tmp_path, stack), *lb_of(stack), "--dataplane", "sidecar", "--out", str(tmp_path / "plan"),
                      "--format", "json"])
    plan = json.loads(capsys.readouterr().out)
    assert (code, plan["differences"], plan["findings"]) == (0, [], [])
    assert all(sample["declared"] == sample["computed"] for sample in plan["sampleRequests"])


@pytest.mark.parametrize("stack", ["dev", "prod", "generated"])
def test_moving_a_stack_between_sidecars_and_ambient_changes_no_cell(tmp_path, capsys, stack):
    plans = {}
    for dataplane in ("sidecar", "ambient"):
        plans[dataplane] = str(tmp_path / dataplane)
        code = plan_main([*config_of(tmp_path, stack), *lb_of(stack), "--dataplane", dataplane, "--out", plans[dataplane],
                          "--format", "json"])
        assert code == 0, dataplane
    capsys.readouterr()
    assert plan_main(["diff", plans["sidecar"], plans["ambient"], "--fail-on-change", "--format", "json"]) == EXIT_PASSED
    diff = json.loads(capsys.readouterr().out)
    assert (diff["opened"], diff["closed"], diff["changed"]) == ([], [], [])
    assert diff["manifestsAdded"] and diff["manifestsRemoved"]  # two renderings compared, not one twice


def injected(manifests: list[dict], namespaces: set[str]) -> list[dict]:
    """The namespaces still labelled for injection, as they are after step 3 of the README's migration."""
    for manifest in manifests:
        if manifest["kind"] in ("Namespace", "NamespacePatch") and manifest["metadata"]["name"] in namespaces:
            manifest["metadata"].setdefault("labels", {})["istio-injection"] = "enabled"
    return manifests


@pytest.mark.parametrize(("values", "load_balancers"), [
    pytest.param(dev_values(), None, id="dev"),
    pytest.param(stack_values("prod"), {}, id="prod"),
    pytest.param(GENERATED, GENERATED_LOAD_BALANCERS, id="generated"),
])
def test_mid_migration_a_pod_that_keeps_its_sidecar_fails_closed_under_the_lockdown(values, load_balancers):
    """README, step 3: after `pulumi up` with `dataplane: ambient`, a pod that still has its sidecar has
    no route to the egress gateway and goes straight out, which the lockdown stops; without the
    lockdown (and the stand-ins' ingress policy, which also stops dev's pods) they reach the targets."""
    config = parse_config(values)
    clients = {grant.namespace for grant in config.grants}

    def matrix(lockdown: bool):
        protection = {"egressLockdown": {"enabled": lockdown},
                      "bypassProtection": {**values.get("bypassProtection", {}), "databaseIngressPolicy": lockdown}}
        manifests = run({**values, **protection}, load_balancers).applied()
        return access_matrix(injected(manifests, clients))

    locked = matrix(lockdown=True)
    assert {client for client, _, _ in locked.entries()} >= clients
    for client, destination, verdict in locked.entries():
        assert verdict.decision is Decision.DENY, (client, destination.label, verdict.reason)
        namespace, _ = client_identity(client)
        assert f"goes straight out to it, which the egress NetworkPolicies of namespace {namespace} stop" in verdict.reason
    assert {locked.other_destinations[client].decision for client in clients} == {Decision.DENY}
    unlocked = matrix(lockdown=False)
    assert all(verdict.decision is not Decision.DENY for _, _, verdict in unlocked.entries())
