"""`make plan` and `make plan-diff`.

    python -m tools.plan [--stack dev | --config FILE] [--out DIR] [--format text|json|mermaid]
    python -m tools.plan diff OLD NEW [--format text|markdown|json] [--fail-on-open]
    python -m tools.plan diff --stack dev --base origin/main [--head REV]

Exit codes: 0 the manifests give exactly the declared access and no Error finding (diff: no cell
opened, or no `--fail-on-open`); 1 they do not (diff: `--fail-on-open` and a cell opened); 2 the
input is bad (config, flag, directory) and nothing was written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from analysis import MeshIndex, load_manifests
from components.names import address_problem
from stack import PROJECT, ConfigError, read_stack_file
from tools.mock_engine import ROOT, RecordingMocks

from .build import (
    PlaceholdersExhausted,
    PlanDirectoryError,
    PlanLayout,
    placeholder_load_balancers,
    run_stack_file,
    write_manifests,
)
from .report import (
    EXIT_BAD_INPUT,
    TooLargeForMermaid,
    analyse,
    as_json,
    render_mermaid,
    render_text,
    report,
)


class Progress:
    """Stage lines on stderr once a run has taken more than a moment, so a long plan shows life."""

    def __init__(self, stream: TextIO, *, after_seconds: float = 2.0) -> None:
        self.stream, self.after_seconds, self.started = stream, after_seconds, time.perf_counter()

    def stage(self, text: str) -> None:
        elapsed = time.perf_counter() - self.started
        if elapsed >= self.after_seconds:
            print(f"plan: {text} ({elapsed:.0f} s)", file=self.stream, flush=True)


def _overrides(pairs: Sequence[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, separator, address = pair.partition("=")
        if not separator or not name or not address:
            raise SystemExit(f"--lb takes NAME=ADDRESS, e.g. --lb postgres-1=198.51.100.7 (got {pair!r})")
        problem = address_problem(address)
        if problem:
            raise SystemExit(f"--lb {name}: the address {problem}")
        overrides[name] = address
    return overrides


def _explained(pairs: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    return [(client, target) for client, target in pairs]


def plan_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="make plan", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--stack", default="dev", help="reads Pulumi.<stack>.yaml (default: dev)")
    parser.add_argument("--config", type=Path, help="a stack config file to read instead of Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, help="the plan's directory (default: build/plan/<stack>); manifests go "
                                                 "into its manifests/, reports beside them")
    parser.add_argument("--dataplane", choices=("ambient", "sidecar"),
                        help="plan the stack for this dataplane instead of its own (to compare the two renderings)")
    parser.add_argument("--lb", action="append", default=[], metavar="NAME=ADDRESS",
                        help="a stand-in's LoadBalancer address instead of the placeholder; repeatable")
    parser.add_argument("--format", choices=("text", "json", "mermaid"), default="text",
                        help="json prints only the plan's JSON on stdout (its shape is in the README); mermaid a diagram")
    parser.add_argument("--matrix", action="store_true", help="print the whole matrix however large (text)")
    parser.add_argument("--all-edges", action="store_true", help="draw DENY edges too (mermaid)")
    parser.add_argument("--explain", nargs=2, action="append", default=[], metavar=("CLIENT", "DESTINATION"),
                        help="print why a cell has its verdict, e.g. --explain rds-demo-1 istio-egress/postgres-2; "
                             "DESTINATION may be a target's name, or `other` for any undeclared external destination")
    args = parser.parse_args(argv)

    stack_path = args.config or ROOT / f"Pulumi.{args.stack}.yaml"
    if not stack_path.exists():
        print(f"no stack config {stack_path.name}: create it, or pick another with STACK=<name>", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        stack_file = read_stack_file(stack_path)
        if args.dataplane:
            stack_file = replace(stack_file, config={**stack_file.config, f"{PROJECT}:dataplane": args.dataplane})
        config = stack_file.stack_config()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_INPUT
    overrides = _overrides(args.lb)
    unknown = sorted(set(overrides) - {database.name for database in config.databases if database.is_stand_in})
    if unknown:
        print(f"--lb names no stand-in database: {', '.join(unknown)}", file=sys.stderr)
        return EXIT_BAD_INPUT

    progress = Progress(sys.stderr)
    layout = PlanLayout(args.out or ROOT / "build" / "plan" / args.stack)
    try:
        load_balancers = placeholder_load_balancers(config, overrides)
    except PlaceholdersExhausted as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_INPUT
    run = run_stack_file(stack_file, RecordingMocks(load_balancers), stack=args.stack)
    progress.stage(f"the program registered {len(run.resources)} resources")
    manifests, patches = run.manifests(), run.patches()
    try:
        files = write_manifests(layout, manifests, patches)
    except PlanDirectoryError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_INPUT
    progress.stage(f"wrote {len(files)} files under {layout.manifests}")

    analysed = analyse(MeshIndex(load_manifests(layout.manifests)), config)
    progress.stage("analysed the manifests")
    placeholders = {name: lb.get("ip") or lb["hostname"] for name, lb in load_balancers.items() if name not in overrides}
    plan = report(analysed, stack=args.stack, manifests=layout.manifests.name, objects=len(manifests),
                  label_patches=len(patches), placeholders=placeholders)
    text = render_text(plan, analysed, full_matrix=args.matrix, explain=_explained(args.explain))
    plan_json = as_json(plan)
    layout.report.write_text(plan_json)
    layout.text.write_text(text + "\n")
    try:
        mermaid = render_mermaid(plan, all_edges=args.all_edges)
        layout.mermaid.write_text(mermaid + "\n")
    except TooLargeForMermaid as refused:
        mermaid = None
        if args.format == "mermaid":
            print(f"make plan: {refused}", file=sys.stderr)
            return EXIT_BAD_INPUT

    if args.format == "json":
        sys.stdout.write(plan_json)
        return int(plan["exitCode"])
    shown = os.path.relpath(layout.manifests) if layout.manifests.is_relative_to(Path.cwd()) else layout.manifests
    header = f"{stack_path.name}: {len(manifests)} objects and {len(patches)} label patches in {len(files)} files under {shown}"
    if placeholders:
        listed = ", ".join(f"{name}={address}" for name, address in placeholders.items())
        header += (f"\nPLACEHOLDER LoadBalancer addresses (documentation range, not real; "
                   f"override with --lb NAME=ADDRESS): {listed}")
    if args.format == "mermaid":
        print(header, file=sys.stderr)
        print(mermaid)
    else:
        print(header)
        print()
        print(text)
    return int(plan["exitCode"])


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["diff"]:
        from .diff import diff_main

        return diff_main(arguments[1:])
    return plan_main(arguments)


if __name__ == "__main__":
    sys.exit(main())
