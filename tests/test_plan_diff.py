"""`plan diff`: what a change does to access, cell by cell, for review and for a CI gate."""

from __future__ import annotations

import json
import re
import shlex

import pytest
import yaml

from tools.mock_engine import ROOT
from tools.plan.__main__ import main as plan_main
from tools.plan.diff import EXIT_CHANGED, EXIT_PASSED, diff_parser

from .support import stack_values

HTTPBIN = {"name": "httpbin", "host": "httpbin.org", "ports": [{"number": 80, "protocol": "HTTP"}]}


def planned(tmp_path, name: str, values: dict) -> str:
    stack = tmp_path / f"Pulumi.{name}.yaml"
    stack.write_text(yaml.safe_dump({"config": {f"ambient-egress:{key}": value for key, value in values.items()}}))
    out = tmp_path / name
    assert plan_main(["--config", str(stack), "--out", str(out), "--format", "json"]) == 0
    return str(out)


def diffed(capsys, old: str, new: str, *options: str) -> tuple[int, str]:
    capsys.readouterr()
    code = plan_main(["diff", old, new, *options])
    return code, capsys.readouterr().out


@pytest.fixture
def prod(tmp_path):
    return stack_values("prod")


def test_an_unchanged_stack_shows_no_change_and_passes_the_gate(tmp_path, capsys, prod):
    code, out = diffed(capsys, planned(tmp_path, "old", prod), planned(tmp_path, "new", prod), "--fail-on-open")
    assert code == EXIT_PASSED
    assert out.strip() == "No change: every cell, finding and manifest is the same."


def test_a_grant_added_opens_its_cells_adds_its_policy_and_fails_the_gate(tmp_path, capsys, prod):
    grants = [*prod["grants"], {"namespace": "shop", "databases": ["orders", "billing"], "serviceAccounts": ["checkout"]}]
    new = {**prod, "grants": grants[1:]}
    code, out = diffed(capsys, planned(tmp_path, "old", prod), planned(tmp_path, "new", new), "--format", "json",
                       "--fail-on-open")
    diff = json.loads(out)
    assert code == EXIT_CHANGED
    assert diff["opened"] == [{"client": "shop/sa/checkout", "destination": "istio-egress/billing",
                               "before": "DENY", "after": "ALLOW"}]
    assert diff["closed"] == []
    assert diff["manifestsAdded"] == ["AuthorizationPolicy istio-egress/allow-billing-from-shop"]


def test_a_grant_removed_closes_its_cells_and_passes_the_gate(tmp_path, capsys, prod):
    new = {**prod, "grants": [grant for grant in prod["grants"] if grant["namespace"] != "finance"]}
    code, out = diffed(capsys, planned(tmp_path, "old", prod), planned(tmp_path, "new", new), "--format", "json",
                       "--fail-on-open")
    diff = json.loads(out)
    assert code == EXIT_PASSED
    assert [(cell["client"], cell["destination"], cell["before"], cell["after"]) for cell in diff["closed"]] == [
        ("finance", "istio-egress/billing", "ALLOW", "DENY"), ("finance", "istio-egress/reporting", "ALLOW", "DENY")]
    assert diff["opened"] == []
    assert "AuthorizationPolicy istio-egress/allow-billing-from-finance" in diff["manifestsRemoved"]
    assert "NetworkPolicy finance/egress-lockdown" in diff["manifestsRemoved"]


def test_a_narrowed_l7_grant_closes_any_request_to_some_and_changes_the_policy(tmp_path, capsys):
    old = {"databases": [], "services": [HTTPBIN], "grants": [{"namespace": "apps", "services": ["httpbin"]}]}
    new = {**old, "grants": [{"namespace": "apps", "services": [{"name": "httpbin", "methods": ["GET"]}]}]}
    code, out = diffed(capsys, planned(tmp_path, "old", old), planned(tmp_path, "new", new), "--fail-on-open")
    assert code == EXIT_PASSED
    assert "Closed (1):" in out and "apps  istio-egress/httpbin  ALLOW -> LIMITED" in out
    assert "Manifests changed (1):\n  AuthorizationPolicy istio-egress/allow-httpbin-from-apps" in out


def test_the_markdown_form_is_a_pull_request_comment_with_the_access_changes_first(tmp_path, capsys, prod):
    new = {**prod, "grants": [*prod["grants"], {"namespace": "audit", "databases": ["reporting"]}]}
    _, out = diffed(capsys, planned(tmp_path, "old", prod), planned(tmp_path, "new", new), "--format", "markdown")
    assert out.startswith("### Egress access\n\n**Cells:** 1 opened")
    assert "| audit | istio-egress/reporting | DENY | **ALLOW** |" in out


def test_the_stack_at_a_git_revision_is_planned_in_its_own_checkout(capsys):
    # The working tree against HEAD: the same program and config in a clean checkout.
    capsys.readouterr()
    code = plan_main(["diff", "--stack", "prod", "--base", "HEAD", "--format", "json"])
    diff = json.loads(capsys.readouterr().out)
    assert code == EXIT_PASSED
    assert diff["opened"] == diff["closed"] == diff["changed"] == []


@pytest.mark.parametrize(("arguments", "words"), [
    (["diff", "only-one"], "give two plans to compare (old new), or --base REVISION"),
    (["diff", "nowhere", "elsewhere"], "nowhere/plan.json does not exist"),
    (["diff", "--base", "no-such-revision"], "git worktree add"),
])
def test_bad_diff_input_is_named_with_the_fix(capsys, arguments, words):
    assert plan_main(arguments) == 2
    assert words in capsys.readouterr().err


def test_fail_on_change_passes_an_unchanged_stack_and_fails_a_closed_cell(tmp_path, capsys, prod):
    old = planned(tmp_path, "old", prod)
    same, _ = diffed(capsys, old, planned(tmp_path, "same", prod), "--fail-on-change")
    narrowed = {**prod, "grants": [grant for grant in prod["grants"] if grant["namespace"] != "finance"]}
    closed, _ = diffed(capsys, old, planned(tmp_path, "narrowed", narrowed), "--fail-on-change")
    only_opened_gate, _ = diffed(capsys, old, str(tmp_path / "narrowed"), "--fail-on-open")
    assert (same, closed, only_opened_gate) == (EXIT_PASSED, EXIT_CHANGED, EXIT_PASSED)


def test_the_pull_request_workflow_runs_make_plan_diff_with_flags_plan_diff_accepts_and_gates_on_opened_cells():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "plan-diff.yml").read_text())
    steps = workflow["jobs"]["plan-diff"]["steps"]
    command = " ".join(step.get("run", "") for step in steps).replace("\\\n", " ")
    make_call = shlex.split(re.search(r"make -s plan-diff [^>]*", command).group(0))
    variables = dict(word.split("=", 1) for word in make_call if "=" in word)
    assert re.search(r"^plan-diff:", (ROOT / "Makefile").read_text(), re.MULTILINE)
    arguments = diff_parser().parse_args(["--stack", "dev", "--base", "origin/main", *shlex.split(variables["DIFF_ARGS"])])
    assert (arguments.format, arguments.fail_on_open) == ("markdown", True)
    assert set(workflow["jobs"]["plan-diff"]["strategy"]["matrix"]["stack"]) == {
        path.name.split(".")[1] for path in ROOT.glob("Pulumi.*.yaml") if path.name.split(".")[1] != "kind"}


def test_turning_a_namespaces_lockdown_off_opens_its_other_destinations_cell(tmp_path, capsys, prod):
    new = {**prod, "grants": [{**grant, "egressLockdown": {"enabled": False}} if grant["namespace"] == "shop" else grant
                              for grant in prod["grants"]]}
    code, out = diffed(capsys, planned(tmp_path, "old", prod), planned(tmp_path, "new", new), "--format", "json",
                       "--fail-on-open")
    opened = json.loads(out)["opened"]
    assert code == EXIT_CHANGED
    assert {(cell["client"], cell["destination"], cell["before"], cell["after"]) for cell in opened} == {
        ("shop", "any other external", "DENY", "OPEN"), ("shop/sa/checkout", "any other external", "DENY", "OPEN")}
