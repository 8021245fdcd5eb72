"""`plan diff`: what a change does to access. Two plans compared cell by cell (opened, closed,
changed), finding by finding, and manifest by manifest; as text, as Markdown for a pull request,
or as JSON. `--fail-on-open` makes any opened cell fail a CI gate; `--fail-on-change` any changed cell.

Two plan outputs (directories or their plan.json), or the stack at two git revisions: each
revision is checked out into a temporary worktree and planned there, program and config together.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis import align_columns, load_manifests
from analysis.matrix import OTHER_DESTINATIONS
from tools.mock_engine import ROOT

from .report import FORMAT, OPENNESS

EXIT_PASSED, EXIT_CHANGED, EXIT_BAD_INPUT = 0, 1, 2


class DiffInputError(Exception):
    """A plan to compare cannot be read or made."""


@dataclass(frozen=True)
class Plan:
    report: Mapping[str, Any]
    manifests: Mapping[tuple[str, str, str, str], Mapping[str, Any]]
    """Every manifest by (apiVersion, kind, namespace, name)."""


def read_plan(path: Path) -> Plan:
    """A plan directory (or its plan.json) as `make plan` wrote it."""
    root = path.parent if path.name == "plan.json" else path
    report_path = root / "plan.json"
    try:
        report = json.loads(report_path.read_text())
    except FileNotFoundError:
        raise DiffInputError(f"{report_path} does not exist: give a directory `make plan` wrote, or its plan.json") from None
    except ValueError as error:
        raise DiffInputError(f"{report_path} is not JSON ({error})") from None
    if not isinstance(report, dict) or report.get("format") != FORMAT:
        raise DiffInputError(f"{report_path} is not a plan of format {FORMAT}; plan both sides with this version")
    manifests = {}
    for manifest in load_manifests(root / "manifests") if (root / "manifests").is_dir() else []:
        metadata = manifest.get("metadata") or {}
        key = (manifest.get("apiVersion", ""), manifest.get("kind", ""), metadata.get("namespace", ""), metadata.get("name", ""))
        # A namespace's label patch and the namespace itself share a name; the patch is what applies.
        manifests[key] = manifest
    return Plan(report, manifests)


def plan_at_revision(revision: str, stack: str, workdir: Path) -> Plan:
    """The stack planned by its program as of `revision` (`HEAD`, `origin/main`, a commit)."""
    checkout = workdir / "checkout"
    out = workdir / "plan"
    _git("worktree", "add", "--detach", str(checkout), revision)
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "tools.plan", "--stack", stack, "--out", str(out), "--format", "json"],
            cwd=checkout, capture_output=True, text=True, check=False,
            env={**os.environ, "PYTHONPATH": str(checkout)},
        )
        if completed.returncode not in (0, 1):
            raise DiffInputError(f"planning {stack} at {revision} failed:\n{completed.stderr.strip()}")
        return read_plan(out)
    finally:
        _git("worktree", "remove", "--force", str(checkout))


def _git(*args: str) -> None:
    completed = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise DiffInputError(f"git {' '.join(args)}: {completed.stderr.strip()}")


def _cells(plan: Plan) -> dict[tuple[str, str], str]:
    cells = {(client, label): verdict for client, row in plan.report["verdicts"].items() for label, verdict in row.items()}
    cells.update(((client, OTHER_DESTINATIONS), verdict) for client, verdict in plan.report.get("otherDestinations", {}).items())
    return cells


def _findings(plan: Plan) -> dict[tuple[str, str, str], Mapping[str, str]]:
    return {(f["code"], f["resource"], f["message"]): f for f in plan.report["findings"]}


def compare(old: Plan, new: Plan) -> dict[str, Any]:
    """Every difference between two plans that matters to access, in a stable order."""
    before, after = _cells(old), _cells(new)
    opened, closed, changed = [], [], []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key, "DENY"), after.get(key, "DENY")
        if was == now:
            continue
        cell = {"client": key[0], "destination": key[1], "before": was, "after": now}
        if OPENNESS[now] > OPENNESS[was]:
            opened.append(cell)
        elif OPENNESS[now] < OPENNESS[was]:
            closed.append(cell)
        else:
            changed.append(cell)
    old_findings, new_findings = _findings(old), _findings(new)
    manifests_added = sorted(new.manifests.keys() - old.manifests.keys())
    manifests_removed = sorted(old.manifests.keys() - new.manifests.keys())
    manifests_changed = sorted(key for key in old.manifests.keys() & new.manifests.keys()
                               if old.manifests[key] != new.manifests[key])
    return {
        "format": "ambient-egress.plan-diff/1",
        "opened": opened, "closed": closed, "changed": changed,
        "findingsAdded": [dict(new_findings[key]) for key in sorted(new_findings.keys() - old_findings.keys())],
        "findingsResolved": [dict(old_findings[key]) for key in sorted(old_findings.keys() - new_findings.keys())],
        "manifestsAdded": [_name(key) for key in manifests_added],
        "manifestsRemoved": [_name(key) for key in manifests_removed],
        "manifestsChanged": [_name(key) for key in manifests_changed],
    }


def _name(key: tuple[str, str, str, str]) -> str:
    _, kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def is_unchanged(diff: Mapping[str, Any]) -> bool:
    return not any(value for key, value in diff.items() if key != "format")


def render_text(diff: Mapping[str, Any]) -> str:
    if is_unchanged(diff):
        return "No change: every cell, finding and manifest is the same."
    lines = []
    for title, key in (("Opened", "opened"), ("Closed", "closed"), ("Changed", "changed")):
        if diff[key]:
            rows = [(cell["client"], cell["destination"], f"{cell['before']} -> {cell['after']}") for cell in diff[key]]
            lines += [f"{title} ({len(rows)}):", *(f"  {line}" for line in align_columns(rows)), ""]
    for title, key in (("Findings added", "findingsAdded"), ("Findings resolved", "findingsResolved")):
        if diff[key]:
            lines += [f"{title} ({len(diff[key])}):"]
            lines += [f"  {f['severity']} [{f['code']}] ({f['resource']}) {f['message']}" for f in diff[key]]
            lines.append("")
    for title, key in (("Manifests added", "manifestsAdded"), ("Manifests removed", "manifestsRemoved"),
                       ("Manifests changed", "manifestsChanged")):
        if diff[key]:
            lines += [f"{title} ({len(diff[key])}):", *(f"  {name}" for name in diff[key]), ""]
    return "\n".join(lines).rstrip()


def render_markdown(diff: Mapping[str, Any]) -> str:
    """For a pull-request comment: the access changes first, as tables."""
    if is_unchanged(diff):
        return "### Egress access\n\nNo change: every cell, finding and manifest is the same."
    lines = ["### Egress access", ""]
    summary = ", ".join(f"{len(diff[key])} {key}" for key in ("opened", "closed", "changed") if diff[key])
    lines += [f"**Cells:** {summary or 'none changed'}", ""]
    for title, key in (("Opened", "opened"), ("Closed", "closed"), ("Changed", "changed")):
        if diff[key]:
            lines += [f"#### {title}", "", "| client | destination | before | after |", "|---|---|---|---|"]
            lines += [f"| {c['client']} | {c['destination']} | {c['before']} | **{c['after']}** |" for c in diff[key]]
            lines.append("")
    for title, key in (("Findings added", "findingsAdded"), ("Findings resolved", "findingsResolved")):
        if diff[key]:
            lines += [f"#### {title}", ""]
            lines += [f"- {f['severity']} `{f['code']}` ({f['resource']}) {f['message']}" for f in diff[key]]
            lines.append("")
    changed = {key: diff[key] for key in ("manifestsAdded", "manifestsRemoved", "manifestsChanged") if diff[key]}
    if changed:
        lines += ["<details><summary>Manifests</summary>", ""]
        for key, names in changed.items():
            lines += [f"{key.removeprefix('manifests').lower()}:", *(f"- `{name}`" for name in names), ""]
        lines.append("</details>")
    return "\n".join(lines).rstrip()


def diff_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.plan diff",
                                     description="Compare two plans: cells opened or closed, findings, manifests.")
    parser.add_argument("plans", nargs="*", type=Path, metavar="PLAN",
                        help="two plan directories (or their plan.json), old then new")
    parser.add_argument("--stack", default="dev", help="with --base: the stack to plan at each revision (default: dev)")
    parser.add_argument("--base", help="plan the stack at this git revision as the old side")
    parser.add_argument("--head", default=None, help="with --base: the new side's revision (default: the working tree)")
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    parser.add_argument("--fail-on-open", action="store_true", help="exit 1 when a change opens any cell (for CI)")
    parser.add_argument("--fail-on-change", action="store_true",
                        help="exit 1 when any cell changes at all (to prove a migration changes no one's access)")
    return parser


def diff_main(argv: Sequence[str]) -> int:
    args = diff_parser().parse_args(argv)
    try:
        old, new = _sides(args)
    except DiffInputError as error:
        print(f"plan diff: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    diff = compare(old, new)
    if args.format == "json":
        sys.stdout.write(json.dumps(diff, indent=2, sort_keys=True) + "\n")
    elif args.format == "markdown":
        print(render_markdown(diff))
    else:
        print(render_text(diff))
    if args.fail_on_change and (diff["opened"] or diff["closed"] or diff["changed"]):
        return EXIT_CHANGED
    return EXIT_CHANGED if args.fail_on_open and diff["opened"] else EXIT_PASSED


def _sides(args: argparse.Namespace) -> tuple[Plan, Plan]:
    if args.base is None:
        if len(args.plans) != 2:
            raise DiffInputError("give two plans to compare (old new), or --base REVISION")
        return read_plan(args.plans[0]), read_plan(args.plans[1])
    if args.plans:
        raise DiffInputError("give two plans or --base, not both")
    with tempfile.TemporaryDirectory(prefix="plan-diff-") as workdir:
        old = plan_at_revision(args.base, args.stack, Path(workdir) / "base")
        if args.head is None:
            completed = subprocess.run(
                [sys.executable, "-m", "tools.plan", "--stack", args.stack, "--out", str(Path(workdir) / "head"),
                 "--format", "json"],
                cwd=ROOT, capture_output=True, text=True, check=False)
            if completed.returncode not in (0, 1):
                raise DiffInputError(f"planning {args.stack} in the working tree failed:\n{completed.stderr.strip()}")
            new = read_plan(Path(workdir) / "head")
        else:
            new = plan_at_revision(args.head, args.stack, Path(workdir) / "head-rev")
    return old, new
