"""`make plan`: manifests in apply order, the access matrix, findings and the exit code."""

from __future__ import annotations

import json

import pytest
import yaml

from analysis import MeshIndex, access_matrix
from components import manifests
from stack import parse_config
from tools import plan
from tools.mock_engine import MOCK_PASSWORD, SECRET_PLACEHOLDER

from .support import dev_values, run


def run_plan(tmp_path, capsys, *args: str) -> tuple[int, str]:
    code = plan.main(["--out", str(tmp_path / "plan"), *args])
    return code, capsys.readouterr().out


def write_stack(tmp_path, config: dict) -> str:
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(yaml.safe_dump({"config": {f"ambient-egress:{key}": value for key, value in config.items()}}))
    return str(path)


def test_dev_plan_prints_the_reference_four_checks_and_passes(tmp_path, capsys):
    code, out = run_plan(tmp_path, capsys)
    assert code == 0
    matrix = json.loads((tmp_path / "plan" / "access-matrix.json").read_text())
    assert matrix["cells"] == {
        "rds-demo-1": {"istio-egress/postgres-1": "ALLOW", "istio-egress/postgres-2": "DENY"},
        "rds-demo-2": {"istio-egress/postgres-1": "DENY", "istio-egress/postgres-2": "ALLOW"},
    }
    assert "No findings." in out
    assert "rds-demo-1 -> istio-egress/postgres-2: DENY" in out


def test_placeholder_load_balancer_addresses_are_documentation_addresses_and_say_so(tmp_path, capsys):
    _, out = run_plan(tmp_path, capsys)
    assert "PLACEHOLDER LoadBalancer addresses (TEST-NET-3" in out
    entries = yaml.safe_load_all((tmp_path / "plan" / "40-service-entries.yaml").read_text())
    assert sorted(entry["spec"]["hosts"][0] for entry in entries) == ["203.0.113.10.nip.io", "203.0.113.11.nip.io"]


def test_load_balancer_address_can_be_overridden_per_database(tmp_path, capsys):
    code, out = run_plan(tmp_path, capsys, "--lb", "postgres-2=pg2.elb.example.com")
    hosts = [e["spec"]["hosts"][0] for e in yaml.safe_load_all((tmp_path / "plan" / "40-service-entries.yaml").read_text())]
    assert code == 0
    assert sorted(hosts) == ["203.0.113.10.nip.io", "pg2.elb.example.com"]
    assert "postgres-2=" not in out.split("PLACEHOLDER", 1)[1].splitlines()[0]


def test_override_for_an_unknown_database_is_refused(tmp_path, capsys):
    assert plan.main(["--out", str(tmp_path / "p"), "--lb", "postgres-9=1.2.3.4"]) == 2
    assert "postgres-9" in capsys.readouterr().err


def test_manifest_files_apply_namespaces_first_and_baselines_before_service_entries(tmp_path, capsys):
    run_plan(tmp_path, capsys)
    files = sorted(path.name for path in (tmp_path / "plan").glob("*.yaml"))
    assert files[0] == "00-namespaces.yaml"
    created: set[str] = set()
    for file in files:
        for manifest in yaml.safe_load_all((tmp_path / "plan" / file).read_text()):
            namespace = manifest["metadata"].get("namespace")
            assert namespace is None or namespace in created, f"{file}: {manifest['kind']} before namespace {namespace}"
            if manifest["kind"] == "Namespace":
                created.add(manifest["metadata"]["name"])
    assert files.index("30-baseline-policies.yaml") < files.index("40-service-entries.yaml") < files.index("50-grant-policies.yaml")


def test_plan_files_never_hold_the_password(tmp_path, capsys):
    _, out = run_plan(tmp_path, capsys)
    assert MOCK_PASSWORD not in out
    for path in (tmp_path / "plan").iterdir():
        assert MOCK_PASSWORD not in path.read_text(), path.name
    secret = next(yaml.safe_load_all((tmp_path / "plan" / "10-identities-and-secrets.yaml").read_text()))
    assert secret["stringData"]["POSTGRES_PASSWORD"] == SECRET_PLACEHOLDER


@pytest.mark.parametrize("fmt", ["json", "mermaid"])
def test_matrix_prints_as_json_or_mermaid(tmp_path, capsys, fmt):
    code, out = run_plan(tmp_path, capsys, "--format", fmt)
    assert code == 0
    if fmt == "json":
        assert '"clients"' in out and '"rds-demo-1"' in out
    else:
        assert "flowchart" in out
    assert (tmp_path / "plan" / "access-matrix.mmd").read_text().startswith("flowchart")


def test_other_stack_is_read_from_its_own_config(tmp_path, capsys):
    code, _ = run_plan(tmp_path, capsys, "--stack", "prod")
    cells = json.loads((tmp_path / "plan" / "access-matrix.json").read_text())["cells"]
    assert code == 0
    assert cells["finance"]["istio-egress/billing"] == "ALLOW"
    assert cells["shop/sa/checkout"]["istio-egress/orders"] == "ALLOW"
    assert cells["shop"]["istio-egress/orders"] == "DENY"


def test_invalid_stack_config_stops_before_planning_with_the_problem(tmp_path, capsys):
    config = write_stack(tmp_path, dev_values(grants=[{"namespace": "rds-demo-1", "databases": ["nope"]}]))
    assert plan.main(["--config", config, "--out", str(tmp_path / "plan")]) == 2
    assert "ambient-egress:grants[0].databases[0]" in capsys.readouterr().err
    assert not (tmp_path / "plan").exists()


def test_missing_stack_config_names_the_file(tmp_path, capsys):
    assert plan.main(["--stack", "nowhere", "--out", str(tmp_path / "plan")]) == 2
    assert "Pulumi.nowhere.yaml" in capsys.readouterr().err


def test_matrix_that_differs_from_the_declared_grants_is_reported(tmp_path):
    manifests = [m for m in run().applied() if m["metadata"]["name"] != "allow-postgres-1-from-rds-demo-1"]
    mismatches = plan.declared_mismatches(access_matrix(MeshIndex(manifests)), parse_config(dev_values()))
    assert len(mismatches) == 1
    assert mismatches[0].startswith("rds-demo-1 -> postgres-1: declared ALLOW, manifests give DENY")


def test_error_finding_fails_the_plan(tmp_path, capsys, monkeypatch):
    # A program that renders a ServiceEntry nobody bound to the waypoint must not pass review.
    original = manifests.service_entry

    def unbound(*args, **kwargs):
        entry = original(*args, **kwargs)
        del entry["metadata"]["labels"][manifests.USE_WAYPOINT]
        return entry

    monkeypatch.setattr(manifests, "service_entry", unbound)
    code, out = run_plan(tmp_path, capsys)
    assert code == 1
    assert "Error [EGW0201] (ServiceEntry istio-egress/postgres-1)" in out



HTTPBIN_STACK = {
    "databases": [],
    "services": [{"name": "httpbin", "host": "httpbin.org", "ports": [{"number": 80, "protocol": "HTTP"}],
                  "sampleRequests": [{"method": "GET", "path": "/get"}, {"method": "POST", "path": "/post"}]}],
    "grants": [{"namespace": "apps", "services": [{"name": "httpbin", "serviceAccounts": ["admin"]},
                                                  {"name": "httpbin", "methods": ["GET"], "paths": ["/get"]}]}],
}


def test_plan_evaluates_each_sample_request_from_each_client(tmp_path, capsys):
    code = plan.main(["--config", write_stack(tmp_path, HTTPBIN_STACK), "--out", str(tmp_path / "plan")])
    out = capsys.readouterr().out
    assert code == 0
    rows = [line.split() for line in out.split("HTTP sample requests:\n", 1)[1].splitlines()[1:5]]
    assert rows == [["apps", "GET", "httpbin/get", "ALLOW", "ALLOW"], ["apps", "POST", "httpbin/post", "DENY", "DENY"],
                    ["apps/sa/admin", "GET", "httpbin/get", "ALLOW", "ALLOW"],
                    ["apps/sa/admin", "POST", "httpbin/post", "ALLOW", "ALLOW"]]


def test_sample_request_the_manifests_do_not_allow_is_a_mismatch():
    config = parse_config(HTTPBIN_STACK)
    manifests = [m for m in run(HTTPBIN_STACK, load_balancers={}).applied()
                 if m["metadata"]["name"] != "allow-httpbin-from-apps"]
    differing = [check for check in plan.sample_checks(MeshIndex(manifests), config) if not check.matches]
    assert [(c.client, c.method, c.path, c.declared, c.computed) for c in differing] == [
        ("apps", "GET", "/get", "ALLOW", "DENY"), ("apps/sa/admin", "GET", "/get", "ALLOW", "DENY"),
        ("apps/sa/admin", "POST", "/post", "ALLOW", "DENY"),
    ]


def test_limited_grant_without_sample_requests_is_named_as_unchecked(tmp_path, capsys):
    stack = {**HTTPBIN_STACK, "services": [{**HTTPBIN_STACK["services"][0], "sampleRequests": []}]}
    plan.main(["--config", write_stack(tmp_path, stack), "--out", str(tmp_path / "plan")])
    assert "method- or path-limited grants of httpbin are not checked: declare sampleRequests" in capsys.readouterr().out
