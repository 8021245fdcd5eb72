"""`make plan`: manifests in apply order, the access matrix, findings and the exit code."""

from __future__ import annotations

import json

import pytest
import yaml

from analysis import MeshIndex
from components import manifests
from stack import parse_config
from tools.mock_engine import MOCK_PASSWORD, SECRET_PLACEHOLDER, resolved
from tools.plan.__main__ import main as plan_main
from tools.plan.build import PlanLayout, placeholder_load_balancers, write_manifests
from tools.plan.report import analyse, differences, sample_requests

from .support import SEED_000_TABLE, dev_values, run


def run_plan(tmp_path, capsys, *args: str) -> tuple[int, str]:
    code = plan_main(["--out", str(tmp_path / "plan"), *args])
    return code, capsys.readouterr().out


def written(tmp_path, file: str) -> list[dict]:
    return list(yaml.safe_load_all((tmp_path / "plan" / "manifests" / file).read_text()))


def write_stack(tmp_path, config: dict) -> str:
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(yaml.safe_dump({"config": {f"ambient-egress:{key}": value for key, value in config.items()}}))
    return str(path)


def test_dev_plan_prints_the_reference_four_checks_and_passes(tmp_path, capsys):
    code, out = run_plan(tmp_path, capsys)
    assert code == 0
    assert json.loads((tmp_path / "plan" / "plan.json").read_text())["verdicts"] == SEED_000_TABLE
    assert "No findings." in out
    assert "2 clients × 2 destinations = 4 cells: 2 ALLOW, 2 DENY" in out


def test_placeholder_load_balancer_addresses_are_documentation_addresses_and_say_so(tmp_path, capsys):
    _, out = run_plan(tmp_path, capsys)
    assert "PLACEHOLDER LoadBalancer addresses (documentation range" in out
    entries = written(tmp_path, "40-service-entries.yaml")
    assert sorted(entry["spec"]["hosts"][0] for entry in entries) == ["203.0.113.10.nip.io", "203.0.113.11.nip.io"]


def test_load_balancer_address_can_be_overridden_per_database(tmp_path, capsys):
    code, out = run_plan(tmp_path, capsys, "--lb", "postgres-2=pg2.elb.example.com")
    hosts = [entry["spec"]["hosts"][0] for entry in written(tmp_path, "40-service-entries.yaml")]
    assert code == 0
    assert sorted(hosts) == ["203.0.113.10.nip.io", "pg2.elb.example.com"]
    assert "postgres-2=" not in out.split("PLACEHOLDER", 1)[1].splitlines()[0]


def test_override_for_an_unknown_database_is_refused(tmp_path, capsys):
    assert plan_main(["--out", str(tmp_path / "p"), "--lb", "postgres-9=1.2.3.4"]) == 2
    assert "postgres-9" in capsys.readouterr().err


def test_manifest_files_apply_namespaces_first_and_baselines_before_service_entries(tmp_path, capsys):
    run_plan(tmp_path, capsys)
    files = sorted(path.name for path in (tmp_path / "plan" / "manifests").glob("*.yaml"))
    assert files[0] == "00-namespaces.yaml"
    created: set[str] = set()
    for file in files:
        for manifest in written(tmp_path, file):
            namespace = manifest["metadata"].get("namespace")
            assert namespace is None or namespace in created, f"{file}: {manifest['kind']} before namespace {namespace}"
            if manifest["kind"] == "Namespace":
                created.add(manifest["metadata"]["name"])
    assert files.index("30-baseline-policies.yaml") < files.index("40-service-entries.yaml") < files.index(
        "50-grant-policies.yaml")
    assert files.index("15-admission.yaml") < files.index("40-service-entries.yaml")


def test_the_manifest_directory_holds_only_manifests_so_kubectl_apply_takes_it_whole(tmp_path, capsys):
    run_plan(tmp_path, capsys)
    applied = [path for path in (tmp_path / "plan" / "manifests").iterdir() if path.suffix in (".yaml", ".yml", ".json")]
    assert applied and all(path.suffix == ".yaml" for path in applied)
    for path in applied:
        assert all(isinstance(document, dict) and "apiVersion" in document and "kind" in document
                   for document in yaml.safe_load_all(path.read_text())), path.name
    assert sorted(path.name for path in (tmp_path / "plan").iterdir() if path.is_file() and not path.name.startswith(".")) == [
        "access-matrix.mmd", "plan.json", "plan.txt"]


def test_two_plans_of_the_same_stack_are_byte_identical(tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    assert plan_main(["--stack", "prod", "--out", str(first)]) == plan_main(["--stack", "prod", "--out", str(second)])
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert files and files == sorted(path.relative_to(second) for path in second.rglob("*") if path.is_file())
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    capsys.readouterr()


def test_plan_files_never_hold_the_password(tmp_path, capsys):
    _, out = run_plan(tmp_path, capsys)
    assert MOCK_PASSWORD not in out
    for path in (tmp_path / "plan").rglob("*"):
        assert path.is_dir() or MOCK_PASSWORD not in path.read_text(), path.name
    secret = next(doc for doc in written(tmp_path, "10-identities-and-secrets.yaml") if doc["kind"] == "Secret")
    assert secret["stringData"]["POSTGRES_PASSWORD"] == SECRET_PLACEHOLDER


def test_json_format_prints_only_the_plan_as_json(tmp_path, capsys):
    code, out = run_plan(tmp_path, capsys, "--format", "json")
    plan = json.loads(out)
    assert code == plan["exitCode"] == 0
    assert plan["format"] == "ambient-egress.plan/1"
    assert plan["counts"] == {"ALLOW": 2, "DENY": 2}
    assert plan["declared"] == {"rds-demo-1": {"postgres-1": "ALLOW", "postgres-2": "DENY"},
                                "rds-demo-2": {"postgres-1": "DENY", "postgres-2": "ALLOW"}}
    assert plan["targets"][0] == {"name": "postgres-1", "kind": "database", "serviceEntry": "istio-egress/postgres-1",
                                  "hosts": ["203.0.113.10.nip.io"], "addresses": ["203.0.113.10"],
                                  "ports": [{"number": 5432, "protocol": "TCP", "name": "tcp-postgres"}]}
    assert plan["testClients"] == {"rds-demo-1": "rds-demo-1", "rds-demo-2": "rds-demo-2"}
    assert out == (tmp_path / "plan" / "plan.json").read_text()


def test_mermaid_draws_the_edges_that_let_something_through(tmp_path, capsys):
    code, out = run_plan(tmp_path, capsys, "--format", "mermaid")
    assert code == 0
    assert {line.strip() for line in out.splitlines() if "->" in line or "==>" in line} == {
        "ns_rds_demo_1 -- ALLOW --> se_istio_egress_postgres_1", "ns_rds_demo_2 -- ALLOW --> se_istio_egress_postgres_2"}
    assert (tmp_path / "plan" / "access-matrix.mmd").read_text().startswith("flowchart")


def test_mermaid_draws_every_edge_on_request(tmp_path, capsys):
    _, out = run_plan(tmp_path, capsys, "--format", "mermaid", "--all-edges")
    assert "ns_rds_demo_1 -. DENY .-> se_istio_egress_postgres_2" in out


def test_mermaid_refuses_a_diagram_past_its_edge_limit(tmp_path, capsys):
    databases = [{"name": f"db-{index}", "address": f"10.0.{index // 200}.{index % 200 + 1}"} for index in range(30)]
    grants = [{"namespace": f"team-{index}", "databases": [database["name"] for database in databases]} for index in range(20)]
    code = plan_main(["--config", write_stack(tmp_path, {"databases": databases, "grants": grants}),
                      "--out", str(tmp_path / "plan"), "--format", "mermaid"])
    assert code == 2
    assert "the diagram would have 600 edges, and Mermaid draws at most 500" in capsys.readouterr().err


def test_a_large_matrix_is_summed_up_rather_than_printed_unless_asked(tmp_path, capsys):
    databases = [{"name": f"db-{index}", "address": f"10.0.0.{index + 1}"} for index in range(25)]
    grants = [{"namespace": f"team-{index}", "databases": ["db-0"]} for index in range(20)]
    config = write_stack(tmp_path, {"databases": databases, "grants": grants})
    assert plan_main(["--config", config, "--out", str(tmp_path / "plan")]) == 0
    out = capsys.readouterr().out
    assert "20 clients × 25 destinations = 500 cells: 20 ALLOW, 480 DENY" in out
    assert "the 500-cell matrix is left out; --matrix prints it" in out
    plan_main(["--config", config, "--out", str(tmp_path / "plan"), "--matrix"])
    assert any(line.startswith("team-9 ") for line in capsys.readouterr().out.splitlines())


def test_explain_gives_the_reason_for_one_cell(tmp_path, capsys):
    _, out = run_plan(tmp_path, capsys, "--explain", "rds-demo-1", "postgres-2")
    assert ("rds-demo-1 -> istio-egress/postgres-2: DENY (no ALLOW policy matched (applicable: "
            "istio-egress/allow-postgres-2-from-rds-demo-2, istio-egress/postgres-2-allow-nothing))") in out
    _, out = run_plan(tmp_path, capsys, "--explain", "nobody", "postgres-2")
    assert "nobody: no such client in this plan" in out


def test_other_stack_is_read_from_its_own_config(tmp_path, capsys):
    code, _ = run_plan(tmp_path, capsys, "--stack", "prod")
    verdicts = json.loads((tmp_path / "plan" / "plan.json").read_text())["verdicts"]
    assert verdicts["finance"]["istio-egress/billing"] == "ALLOW"
    assert verdicts["shop/sa/checkout"]["istio-egress/orders"] == "ALLOW"
    assert verdicts["shop"]["istio-egress/orders"] == "DENY"
    assert code == 0


def test_invalid_stack_config_stops_before_planning_with_the_problem(tmp_path, capsys):
    config = write_stack(tmp_path, dev_values(grants=[{"namespace": "rds-demo-1", "databases": ["nope"]}]))
    assert plan_main(["--config", config, "--out", str(tmp_path / "plan")]) == 2
    assert "ambient-egress:grants[0].databases[0]" in capsys.readouterr().err
    assert not (tmp_path / "plan").exists()


def test_missing_stack_config_names_the_file(tmp_path, capsys):
    assert plan_main(["--stack", "nowhere", "--out", str(tmp_path / "plan")]) == 2
    assert "Pulumi.nowhere.yaml" in capsys.readouterr().err


def test_matrix_that_differs_from_the_declared_grants_is_reported():
    applied = [m for m in run().applied() if m["metadata"]["name"] != "allow-postgres-1-from-rds-demo-1"]
    found = differences(analyse(MeshIndex(applied), parse_config(dev_values())))
    assert [(d["client"], d["target"], d["declared"], d["computed"]) for d in found] == [
        ("rds-demo-1", "postgres-1", "ALLOW", "DENY")]


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
    code = plan_main(["--config", write_stack(tmp_path, HTTPBIN_STACK), "--out", str(tmp_path / "plan")])
    out = capsys.readouterr().out
    assert code == 0
    rows = [line.split() for line in out.split("HTTP sample requests:\n", 1)[1].splitlines()[1:5]]
    assert rows == [["apps", "GET", "httpbin/get", "ALLOW", "ALLOW"], ["apps", "POST", "httpbin/post", "DENY", "DENY"],
                    ["apps/sa/admin", "GET", "httpbin/get", "ALLOW", "ALLOW"],
                    ["apps/sa/admin", "POST", "httpbin/post", "ALLOW", "ALLOW"]]


def test_a_limited_grant_is_compared_as_limited(tmp_path, capsys):
    plan_main(["--config", write_stack(tmp_path, HTTPBIN_STACK), "--out", str(tmp_path / "plan"), "--format", "json"])
    plan = json.loads(capsys.readouterr().out)
    assert plan["verdicts"]["apps"]["istio-egress/httpbin"] == plan["declared"]["apps"]["httpbin"] == "LIMITED"
    assert plan["differences"] == []


def test_sample_request_the_manifests_do_not_allow_is_a_mismatch():
    applied = [m for m in run(HTTPBIN_STACK, load_balancers={}).applied()
               if m["metadata"]["name"] != "allow-httpbin-from-apps"]
    checks = sample_requests(analyse(MeshIndex(applied), parse_config(HTTPBIN_STACK)))
    assert [(c["client"], c["method"], c["path"], c["declared"], c["computed"]) for c in checks
            if c["declared"] != c["computed"]] == [
        ("apps", "GET", "/get", "ALLOW", "DENY"), ("apps/sa/admin", "GET", "/get", "ALLOW", "DENY"),
        ("apps/sa/admin", "POST", "/post", "ALLOW", "DENY"),
    ]


def test_the_stack_outputs_and_the_plan_give_make_verify_the_same_targets_and_sample_requests(tmp_path, capsys):
    stack = {**HTTPBIN_STACK, "databases": [{"name": "orders", "address": "10.20.30.40"}, {"name": "stand-in"}],
             "grants": [*HTTPBIN_STACK["grants"], {"namespace": "shop", "databases": ["orders", "stand-in"],
                                                   "egressLockdown": {"allowCidrs": ["10.96.0.10/32"]}}]}
    exported = resolved(run(stack, load_balancers={"stand-in": {"ip": "198.51.100.7"}}).outputs)
    plan_main(["--config", write_stack(tmp_path, stack), "--out", str(tmp_path / "plan"), "--format", "json",
               "--lb", "stand-in=198.51.100.7"])
    planned = json.loads(capsys.readouterr().out)
    assert exported["targets"] == planned["targets"]
    assert [(target["name"], target["hosts"], target["addresses"]) for target in exported["targets"]] == [
        ("orders", ["10.20.30.40.nip.io"], ["10.20.30.40"]), ("stand-in", ["198.51.100.7.nip.io"], ["198.51.100.7"]),
        ("httpbin", ["httpbin.org"], [])]
    assert exported["sampleRequests"] == [{key: sample[key] for key in ("client", "target", "method", "path", "declared")}
                                          for sample in planned["sampleRequests"]]
    assert [(sample["client"], sample["method"], sample["declared"]) for sample in exported["sampleRequests"]] == [
        ("apps", "GET", "ALLOW"), ("apps", "POST", "DENY"), ("apps/sa/admin", "GET", "ALLOW"),
        ("apps/sa/admin", "POST", "ALLOW"), ("shop", "GET", "DENY"), ("shop", "POST", "DENY")]
    assert exported["egressLockdown"] == {"apps": {"enabled": True, "allowCidrs": []},
                                          "shop": {"enabled": True, "allowCidrs": ["10.96.0.10/32"]}}
    assert planned["waypoint"] == "istio-egress/waypoint"


def test_limited_grant_without_sample_requests_is_named_as_unchecked(tmp_path, capsys):
    stack = {**HTTPBIN_STACK, "services": [{**HTTPBIN_STACK["services"][0], "sampleRequests": []}]}
    plan_main(["--config", write_stack(tmp_path, stack), "--out", str(tmp_path / "plan")])
    assert "method- or path-limited grants of httpbin are checked only by their sampleRequests" in capsys.readouterr().out


# --- bad input: a clear message, exit 2, no traceback, nothing written ------------------------------

BAD_STACK_FILES = [
    pytest.param(b"config:\n  ambient-egress:databases:\n    - name: orders\n   address: 10.0.0.5\n",
                 "Pulumi.test.yaml line 4 column 4", id="indentation"),
    pytest.param(b"config:\n\tambient-egress:databases: []\n", "Pulumi.test.yaml line 2 column 1", id="tab"),
    pytest.param(b"config:\n  ambient-egress:egressNamespace: egr\xe9ss\n", "byte 0xe9 is not UTF-8", id="not-utf8"),
    pytest.param(b"- config: {}\n", "must be a map with a 'config' key", id="top-level-list"),
    pytest.param(b"config:\n  - ambient-egress:databases: []\n", "'config' must be a map", id="config-list"),
    pytest.param(b"config:\n  ambient-egress:databases: []\n  ambient-egres:grants: []\n",
                 'did you mean "ambient-egress:grants"?', id="misspelt-project"),
    pytest.param(b"config:\n  ambient-egress:databases: []\n  ambient-egress:testClients: yes\n",
                 "testClients: must be true or false (got a string 'yes')", id="yaml-1.1-boolean"),
    pytest.param(b"config:\n  ambient-egress:databases: []\n  ambient-egress:databases: []\n",
                 "is given twice", id="duplicate-key"),
]


@pytest.mark.parametrize(("text", "words"), BAD_STACK_FILES)
def test_a_bad_stack_file_stops_the_plan_with_its_problem_and_writes_nothing(tmp_path, capsys, text, words):
    stack = tmp_path / "Pulumi.test.yaml"
    stack.write_bytes(text)
    code = plan_main(["--config", str(stack), "--out", str(tmp_path / "plan")])
    captured = capsys.readouterr()
    assert code == 2
    assert words in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "plan").exists()


@pytest.mark.parametrize("address", ["not a host!", "postgres://db.example.com", "db.example.com:5432"])
def test_a_load_balancer_override_that_is_no_address_is_refused(tmp_path, capsys, address):
    with pytest.raises(SystemExit) as raised:
        plan_main(["--out", str(tmp_path / "plan"), "--lb", f"postgres-1={address}"])
    assert "--lb postgres-1: the address must be an IPv4 address or a DNS name" in str(raised.value)
    assert not (tmp_path / "plan").exists()


def test_the_plan_refuses_to_empty_a_directory_it_did_not_write(tmp_path, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    code = plan_main(["--out", str(precious)])
    assert code == 2
    assert "was not written by make plan; it is left as it is" in capsys.readouterr().err
    assert (precious / "notes.txt").read_text() == "keep me"


def test_the_plan_replaces_its_own_previous_output(tmp_path, capsys):
    out = tmp_path / "plan"
    assert plan_main(["--out", str(out)]) == 0
    (out / "manifests" / "stale.yaml").write_text("kind: Namespace\nmetadata: {name: stale}\n")
    assert plan_main(["--out", str(out)]) == 0
    assert not (out / "manifests" / "stale.yaml").exists()


def test_a_namespace_the_stack_does_not_own_is_labelled_in_its_own_file_after_the_namespaces(tmp_path, capsys):
    assert plan_main(["--stack", "prod", "--out", str(tmp_path / "plan")]) in (0, 1)
    labels = written(tmp_path, "05-namespace-labels.yaml")
    assert {doc["metadata"]["name"]: doc["metadata"]["labels"] for doc in labels} == {
        "shop": {"istio.io/dataplane-mode": "ambient"}, "finance": {"istio.io/dataplane-mode": "ambient"}}
    created = [doc["metadata"]["name"] for doc in written(tmp_path, "00-namespaces.yaml")]
    assert created == ["istio-egress"]


def test_the_dataplane_flag_renders_the_stack_for_sidecar_mode_with_istios_gateway_among_the_traffic_rules(tmp_path, capsys):
    plan_main(["--stack", "prod", "--dataplane", "sidecar", "--out", str(tmp_path / "plan")])
    kinds = {file: sorted({(doc["apiVersion"], doc["kind"]) for doc in written(tmp_path, file)})
             for file in ("45-sidecar-visibility.yaml", "55-traffic-rules.yaml")}
    assert kinds == {
        "45-sidecar-visibility.yaml": [("networking.istio.io/v1", "Sidecar")],
        "55-traffic-rules.yaml": [("networking.istio.io/v1", "DestinationRule"), ("networking.istio.io/v1", "Gateway"),
                                  ("networking.istio.io/v1", "VirtualService")],
    }
    assert not (tmp_path / "plan" / "manifests" / "20-egress-gateway.yaml").exists()
    assert {doc["metadata"]["name"]: doc["metadata"]["labels"] for doc in written(tmp_path, "05-namespace-labels.yaml")} == {
        "shop": {"istio-injection": "enabled"}, "finance": {"istio-injection": "enabled"}}


def test_a_kind_the_plan_has_no_file_for_is_named_rather_than_dropped(tmp_path):
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(ValueError, match=r"Widget.*APPLY_ORDER"):
        write_manifests(PlanLayout(tmp_path / "plan"), [unknown])


def test_every_client_has_a_verdict_for_any_other_external_destination_decided_by_its_lockdown(tmp_path, capsys):
    config = {**dev_values(), "egressLockdown": {"enabled": False}}
    config["grants"] = [*config["grants"][:1], {**config["grants"][1], "egressLockdown": {"enabled": True}}]
    _, out = run_plan(tmp_path, capsys, "--config", write_stack(tmp_path, config), "--explain", "rds-demo-1", "other")
    plan = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert plan["otherDestinations"] == {"rds-demo-1": "OPEN", "rds-demo-2": "DENY"}
    assert "any other external destination: 1 DENY, 1 OPEN" in out
    assert [line.split()[-1] for line in out.splitlines() if line.startswith("rds-demo-")][:2] == ["OPEN", "DENY"]
    assert "rds-demo-1 -> any other external: OPEN (" in out


def test_placeholders_run_through_the_documentation_ranges_and_then_ask_for_addresses(tmp_path, capsys):
    many = {"databases": [{"name": f"db-{index}"} for index in range(754)], "grants": []}
    code = plan_main(["--config", write_stack(tmp_path, many), "--out", str(tmp_path / "plan")])
    assert code == 2
    assert "754 stand-ins need LoadBalancer addresses and the documentation ranges hold 753 placeholders" in (
        capsys.readouterr().err)
    assert not (tmp_path / "plan").exists()
    last = {**many, "databases": many["databases"][:753]}
    assert placeholder_load_balancers(parse_config(last), {})["db-752"] == {"ip": "192.0.2.254"}
    assert placeholder_load_balancers(parse_config(last), {})["db-245"] == {"ip": "198.51.100.1"}
