"""`make verify`: the command line, and the order a verification runs in.

    python -m tools.verify --stack dev [--plan build/plan/dev/plan.json] [--context NAME]
                           [--parallel N] [--timeout SECONDS] [--undeclared HOST:PORT | --no-undeclared] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from stack import ConfigError, read_stack_file

from .checks import Clock, Undeclared, client_pods, plan_checks, run_checks, unprobed_rows
from .expectations import Expectations, load_plan, load_stack_outputs
from .kubectl import CannotVerify, Kubectl, preflight
from .probes import LONGEST_WAIT_SECONDS
from .process import Executor, SubprocessExecutor
from .report import Verification, render_report, report_json, result_notes
from .status import check_status

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_EXEC_TIMEOUT_SECONDS = 20.0
DEFAULT_PARALLEL = 4
MAX_PARALLEL = 32
# Anycast, answering on 443 from everywhere, in no cluster or private range, and an address rather
# than a name, so the probe needs no DNS: if it is unreachable, something stopped it.
DEFAULT_UNDECLARED = "1.1.1.1:443"


def _exec_timeout(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds (got {text!r})") from None
    if seconds <= LONGEST_WAIT_SECONDS:
        # Otherwise a probe still waiting, as probes of denied paths do, would end as a timeout ERROR.
        raise argparse.ArgumentTypeError(f"must exceed the probes' own {LONGEST_WAIT_SECONDS}s wait (got {text})")
    return seconds


def _parallel(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_PARALLEL:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_PARALLEL} (got {text!r})")
    return int(text)


def _undeclared(text: str) -> Undeclared:
    host, separator, port = text.rpartition(":")
    if not separator or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"must be HOST:PORT, e.g. {DEFAULT_UNDECLARED} (got {text!r})")
    return Undeclared(host, int(port))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.verify",
        description="Prove a deployed stack on its cluster: the waypoint, ServiceEntry and policy status, then every "
                    "(client, target) cell from the test client pods, each HTTP sample request, and an undeclared "
                    "destination per client.",
        epilog="Exit codes: 0 all passed, 1 a check failed, 2 could not verify (or some checks errored, or none ran).",
    )
    parser.add_argument("--stack", default="dev", help="the deployed stack; its Pulumi.<stack>.yaml names the kubectl "
                                                       "context (default: dev)")
    parser.add_argument("--plan", type=Path, help="expect what this plan.json (make plan) computes, instead of the "
                                                  "deployed stack's outputs")
    parser.add_argument("--context", help="kubectl context (default: the stack's kubernetes:context)")
    parser.add_argument("--parallel", type=_parallel, default=DEFAULT_PARALLEL,
                        help=f"probes run at once (default: {DEFAULT_PARALLEL})")
    parser.add_argument("--timeout", type=_exec_timeout, default=DEFAULT_EXEC_TIMEOUT_SECONDS,
                        help=f"seconds allowed for each kubectl exec (default: {DEFAULT_EXEC_TIMEOUT_SECONDS:g})")
    undeclared = parser.add_mutually_exclusive_group()
    undeclared.add_argument("--undeclared", type=_undeclared, default=_undeclared(DEFAULT_UNDECLARED), metavar="HOST:PORT",
                            help=f"a destination no ServiceEntry names, tried by each client (default: {DEFAULT_UNDECLARED})")
    undeclared.add_argument("--no-undeclared", action="store_true", help="try no undeclared destination")
    parser.add_argument("--json", action="store_true", help="print a machine-readable result on stdout")
    return parser.parse_args(argv)


def stack_context(stack: str, project_dir: Path) -> str | None:
    """The kubectl context the stack deploys to: `kubernetes:context` in its stack file."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise CannotVerify(f"no stack file {path.name} in {project_dir} to take kubernetes:context from: pass --stack "
                           "with an existing stack, or --context")
    try:
        return read_stack_file(path).kubernetes_context
    except ConfigError as error:
        raise CannotVerify(str(error)) from None


def _expectations(args: argparse.Namespace, executor: Executor, project_dir: Path) -> Expectations:
    if args.plan is None:
        return load_stack_outputs(args.stack, executor, project_dir)
    expectations = load_plan(args.plan)
    if expectations.stack != args.stack:
        raise CannotVerify(f"{args.plan} is the plan of stack {expectations.stack!r}, not {args.stack!r}: pass "
                           f"build/plan/{args.stack}/plan.json, or --stack {expectations.stack}")
    return expectations


def verify(args: argparse.Namespace, executor: Executor, clock: Clock, project_dir: Path) -> Verification:
    started = clock()
    context = source = None
    try:
        # The cluster the stack deploys to, unless told otherwise: never whatever is current.
        kubectl = Kubectl(executor, args.context or stack_context(args.stack, project_dir))
        expectations = _expectations(args, executor, project_dir)
        source = expectations.source
        context = preflight(kubectl)
    except CannotVerify as error:
        return Verification(args.stack, context, source, seconds=clock() - started, error=str(error))
    progress = sys.stderr
    progress.write(f"verify: stack {args.stack!r} on context {context!r}, expectations from {source}\n")
    status = check_status(kubectl, expectations)
    for entry in status:
        progress.write(f"[status] {entry.object} {entry.condition} ... {entry.result.value}\n")
    clients = client_pods(kubectl, expectations)
    checks = plan_checks(expectations, clients, None if args.no_undeclared else args.undeclared)
    results = run_checks(kubectl, checks, timeout=args.timeout, parallel=args.parallel, clock=clock, progress=progress)
    notes = [*expectations.notes, *result_notes(results)]
    if unprobed := unprobed_rows(expectations, clients):
        notes.append(f"no test client runs as {', '.join(unprobed)}: a namespace's client pod speaks for one identity, "
                     "so these rows are not probed")
    return Verification(args.stack, context, source, status, results, notes, clock() - started)


def main(
    argv: Sequence[str] | None = None,
    *,
    executor: Executor | None = None,
    clock: Clock = time.monotonic,
    project_dir: Path = ROOT,
) -> int:
    args = parse_args(argv)
    verification = verify(args, executor or SubprocessExecutor(), clock, project_dir)
    if verification.error is not None:
        print(f"verify: cannot verify stack {args.stack!r}: {verification.error}", file=sys.stderr)
    if args.json:
        print(json.dumps(report_json(verification), indent=2))
    elif verification.error is None:
        print(render_report(verification))
    return verification.exit_code
