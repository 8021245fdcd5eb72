"""`make verify`: prove a deployed stack's access matrix on a live cluster with `pg_isready`.

The counterpart of the reference workshop's `run-test.sh test`. With the current kubeconfig (or
`--context`), it execs `pg_isready -h <host> -p <port> -t 3` in the test client pod of every grant
namespace, for every database, and compares what it sees with the matrix the stack config
promises: ALLOW must connect, DENY must not.

It never reports a pass it did not see. A cell passes only when pg_isready ran and printed its
verdict; a missing pod, a failed or timed-out `kubectl exec`, or an unreadable ServiceEntry is an
ERROR, never a DENY pass. Where no cluster is reachable it stops before the first check.

Exit codes: 0 every check passed; 1 at least one check failed (the cluster disagrees with the
config); 2 verification could not run, or some checks could not run and none failed.

    python -m tools.verify --stack dev [--context NAME] [--timeout SECONDS] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, TextIO

from analysis import align_columns
from components.manifests import TEST_CLIENT_NAME
from stack import PROJECT, ConfigError, StackConfig, read_stack_file
from stack.access import DENY, access_matrix, test_client

ROOT = Path(__file__).resolve().parent.parent

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_NOT_VERIFIED = 2

PG_ISREADY_CONNECT_TIMEOUT_SECONDS = 3
DEFAULT_EXEC_TIMEOUT_SECONDS = 15.0
# Bounds every non-exec kubectl call: the API server's own timeout, plus slack for kubectl itself.
REQUEST_TIMEOUT_SECONDS = 10
_PROCESS_SLACK_SECONDS = 5
# The shell's convention for "command not found", so an executor can report it without a new field.
COMMAND_NOT_FOUND = 127
SERVICE_ENTRY_RESOURCE = "serviceentries.networking.istio.io"
Clock = Callable[[], float]


# --- Running commands -------------------------------------------------------------------------

@dataclass(frozen=True)
class CompletedRun:
    """What a command did. `exit_code` is None when it was stopped at its timeout."""

    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False


class Executor(Protocol):
    def run(self, argv: list[str], timeout: float) -> CompletedRun: ...


class SubprocessExecutor:
    """Runs commands on this machine; the only place the verifier touches a process."""

    def run(self, argv: list[str], timeout: float) -> CompletedRun:
        try:
            completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as expired:
            return CompletedRun(None, _decoded(expired.stdout), _decoded(expired.stderr), timed_out=True)
        except FileNotFoundError:
            return CompletedRun(COMMAND_NOT_FOUND, stderr=f"{argv[0]}: command not found")
        return CompletedRun(completed.returncode, completed.stdout, completed.stderr)


def _decoded(output: str | bytes | None) -> str:
    # TimeoutExpired carries bytes even when the run asked for text.
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


@dataclass(frozen=True)
class Kubectl:
    """Builds every kubectl command line the verifier runs, all against one context."""

    executor: Executor
    context: str | None = None
    binary: str = "kubectl"

    def run(self, *args: str, timeout: float = REQUEST_TIMEOUT_SECONDS + _PROCESS_SLACK_SECONDS) -> CompletedRun:
        context = ["--context", self.context] if self.context else []
        return self.executor.run([self.binary, *context, *args], timeout)

    def get_service_entry(self, namespace: str, name: str) -> CompletedRun:
        return self.run("get", SERVICE_ENTRY_RESOURCE, "-n", namespace, name, "-o", "json",
                        f"--request-timeout={REQUEST_TIMEOUT_SECONDS}s")

    def pg_isready(self, namespace: str, endpoint: Endpoint, timeout: float) -> CompletedRun:
        return self.run(
            "exec", "-n", namespace, TEST_CLIENT_NAME, "-c", TEST_CLIENT_NAME, "--",
            "pg_isready", "-h", endpoint.host, "-p", str(endpoint.port), "-t", str(PG_ISREADY_CONNECT_TIMEOUT_SECONDS),
            timeout=timeout,
        )


class CannotVerify(Exception):
    """Verification cannot start; the message says why and what to do."""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _failure(run: CompletedRun) -> str:
    # kubectl exec appends this to a failed remote command's stderr; it would hide the real reason.
    stderr = "\n".join(line for line in run.stderr.splitlines() if not line.startswith("command terminated with exit code"))
    return _last_line(stderr) or _last_line(run.stdout) or f"exit code {run.exit_code}"


def preflight(kubectl: Kubectl) -> str:
    """The kubectl context verification will use, once kubectl, a kubeconfig and the cluster all answer."""
    if kubectl.context is None:
        current = kubectl.run("config", "current-context")
        _require_kubectl(current)
        if current.exit_code != 0 or not current.stdout.strip():
            raise CannotVerify(
                f"no kubeconfig/current context: {_failure(current)}. Point KUBECONFIG at your cluster's "
                "kubeconfig, run `kubectl config use-context <name>`, or pass --context."
            )
        context = current.stdout.strip()
    else:
        known = kubectl.run("config", "get-contexts", "-o", "name")
        _require_kubectl(known)
        names = known.stdout.split()
        if known.exit_code != 0 or kubectl.context not in names:
            listed = ", ".join(names) or "none; is KUBECONFIG set?"
            raise CannotVerify(f"no kubeconfig context {kubectl.context!r} (known contexts: {listed})")
        context = kubectl.context
    ready = kubectl.run("get", "--raw", "/readyz", f"--request-timeout={REQUEST_TIMEOUT_SECONDS}s")
    if ready.timed_out:
        raise CannotVerify(f"cluster of context {context!r} is not reachable: no answer within {REQUEST_TIMEOUT_SECONDS}s")
    if ready.exit_code != 0:
        raise CannotVerify(f"cluster of context {context!r} is not reachable: {_failure(ready)}")
    return context


def _require_kubectl(run: CompletedRun) -> None:
    if run.exit_code == COMMAND_NOT_FOUND:
        raise CannotVerify("kubectl is not installed or not on PATH: install kubectl to verify a live cluster")


# --- Planning ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Unresolved:
    """A database whose host and port could not be read from the cluster, and why."""

    reason: str


@dataclass(frozen=True)
class Check:
    namespace: str
    database: str
    expected: str  # ALLOW or DENY
    target: Endpoint | Unresolved


def endpoint_from_service_entry(namespace: str, name: str, run: CompletedRun) -> Endpoint | Unresolved:
    """The host and port clients dial, from a `kubectl get serviceentry -o json` run."""
    where = f"ServiceEntry {namespace}/{name}"
    if run.timed_out:
        return Unresolved(f"reading {where} timed out")
    if run.exit_code != 0:
        if "NotFound" in run.stderr:
            return Unresolved(f"{where} not found: run pulumi up first")
        if "doesn't have a resource type" in run.stderr:
            return Unresolved(f"cannot read {where}: the cluster has no ServiceEntry type; install Istio first")
        return Unresolved(f"cannot read {where}: {_failure(run)}")
    try:
        spec = json.loads(run.stdout)["spec"]
        return Endpoint(host=spec["hosts"][0], port=int(spec["ports"][0]["number"]))
    except (ValueError, KeyError, IndexError, TypeError):
        return Unresolved(f"{where} has no spec.hosts[0] and spec.ports[0].number to dial")


def plan_checks(config: StackConfig, targets: Mapping[str, Endpoint | Unresolved]) -> tuple[Check, ...]:
    """One check per database from each grant's test client, in grant then database order.

    The client runs as the grant's first service account when it names any, so its row of the
    promised matrix is that identity's, not the bare namespace's. pg_isready speaks only to
    databases, so other services are left to `make plan`.
    """
    matrix = access_matrix(config)
    return tuple(
        Check(grant.namespace, database.name, matrix[test_client(grant)][database.name], targets[database.name])
        for grant in config.grants
        for database in config.databases
    )


# --- Observing and judging --------------------------------------------------------------------

class Outcome(Enum):
    CONNECTED = "connected"
    REJECTING = "rejecting"
    NO_RESPONSE = "no response"
    ERROR = "error"


class Result(Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"


@dataclass(frozen=True)
class Observation:
    outcome: Outcome
    detail: str


# pg_isready prints `<host>:<port> - <status>` and exits with the status's code. kubectl exec
# passes the remote exit code through but exits 1 on its own failures too, so an exit code counts
# only together with the status line that pg_isready prints for it.
_PG_ISREADY_STATUS = {
    0: ("accepting connections", Outcome.CONNECTED),
    1: ("rejecting connections", Outcome.REJECTING),
    2: ("no response", Outcome.NO_RESPONSE),
}
_PG_ISREADY_NO_ATTEMPT = 3


def interpret_probe(namespace: str, run: CompletedRun, timeout: float) -> Observation:
    """What one `kubectl exec ... pg_isready` run shows; anything but pg_isready's verdict is an ERROR."""
    if run.timed_out:
        return Observation(Outcome.ERROR, f"kubectl exec did not finish within {timeout:g}s")
    status_line = _last_line(run.stdout)
    if run.exit_code in _PG_ISREADY_STATUS:
        status, outcome = _PG_ISREADY_STATUS[run.exit_code]
        if status_line.endswith(f" - {status}"):
            return Observation(outcome, status_line)
    if f'pods "{TEST_CLIENT_NAME}" not found' in run.stderr:
        return Observation(
            Outcome.ERROR,
            f"test client pod {namespace}/{TEST_CLIENT_NAME} not found: set {PROJECT}:testClients: true and run pulumi up",
        )
    if run.exit_code == _PG_ISREADY_NO_ATTEMPT:
        return Observation(Outcome.ERROR, f"pg_isready made no attempt (exit 3, invalid parameters): {_failure(run)}")
    return Observation(Outcome.ERROR, f"kubectl exec failed (exit {run.exit_code}): {_failure(run)}")


def judge(expected: str, observation: Observation) -> Result:
    if observation.outcome is Outcome.ERROR:
        return Result.ERROR
    if expected == DENY:
        # A rejecting server still answered: the connection got through the waypoint.
        return Result.PASS if observation.outcome is Outcome.NO_RESPONSE else Result.FAIL
    if observation.outcome is Outcome.REJECTING:
        # The path is open but the database is not taking sessions: neither proven nor refuted.
        return Result.ERROR
    return Result.PASS if observation.outcome is Outcome.CONNECTED else Result.FAIL


@dataclass(frozen=True)
class CheckResult:
    check: Check
    observation: Observation
    result: Result
    seconds: float | None  # None when nothing ran


def run_check(kubectl: Kubectl, check: Check, timeout: float, clock: Clock) -> CheckResult:
    if isinstance(check.target, Unresolved):
        observation = Observation(Outcome.ERROR, check.target.reason)
        return CheckResult(check, observation, judge(check.expected, observation), None)
    started = clock()
    run = kubectl.pg_isready(check.namespace, check.target, timeout)
    seconds = clock() - started
    observation = interpret_probe(check.namespace, run, timeout)
    return CheckResult(check, observation, judge(check.expected, observation), seconds)


def exit_code(results: Sequence[CheckResult]) -> int:
    outcomes = {result.result for result in results}
    if Result.FAIL in outcomes:
        return EXIT_FAILED
    if Result.ERROR in outcomes or not results:
        return EXIT_NOT_VERIFIED
    return EXIT_PASSED


def unconfirmed_denials(results: Sequence[CheckResult]) -> tuple[str, ...]:
    """Databases denied somewhere that no namespace reached: their `no response` may mean "down"."""
    denied = {r.check.database for r in results if r.check.expected == DENY and r.result is Result.PASS}
    reached = {r.check.database for r in results if r.observation.outcome is Outcome.CONNECTED}
    return tuple(sorted(denied - reached))


# --- Reporting --------------------------------------------------------------------------------

def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _observed(result: CheckResult) -> str:
    return "-" if result.observation.outcome is Outcome.ERROR else result.observation.outcome.value


def progress_line(index: int, total: int, check: Check) -> str:
    return f"[{index}/{total}] {check.namespace} -> {check.database} ..."


def summary_line(results: Sequence[CheckResult], seconds: float) -> str:
    counts = {outcome: sum(r.result is outcome for r in results) for outcome in Result}
    return (f"{counts[Result.PASS]} passed, {counts[Result.FAIL]} failed, {counts[Result.ERROR]} errors "
            f"in {seconds:.2f}s")


def render_table(results: Sequence[CheckResult]) -> str:
    header = ("NAMESPACE", "DATABASE", "EXPECTED", "OBSERVED", "RESULT", "SECONDS")
    rows = [header] + [
        (r.check.namespace, r.check.database, r.check.expected, _observed(r), r.result.value, _seconds(r.seconds))
        for r in results
    ]
    return "\n".join(align_columns(rows))


def render_report(results: Sequence[CheckResult], seconds: float) -> str:
    lines = [render_table(results), ""]
    problems = [r for r in results if r.result is not Result.PASS]
    for r in problems:
        lines.append(f"{r.result.value} {r.check.namespace} -> {r.check.database} (expected {r.check.expected}): "
                     f"{r.observation.detail}")
    for database in unconfirmed_denials(results):
        lines.append(f"note: no namespace connected to {database}, so its DENY passes show it unreachable, "
                     "not necessarily denied; check that it is up")
    if problems or unconfirmed_denials(results):
        lines.append("")
    lines.append(summary_line(results, seconds))
    return "\n".join(lines)


def _target_json(target: Endpoint | Unresolved) -> dict[str, Any]:
    if isinstance(target, Endpoint):
        return {"host": target.host, "port": target.port}
    return {"host": None, "port": None}


def report_json(stack: str, context: str | None, results: Sequence[CheckResult], seconds: float,
                error: str | None = None) -> dict[str, Any]:
    return {
        "stack": stack,
        "context": context,
        "exitCode": EXIT_NOT_VERIFIED if error is not None else exit_code(results),
        "error": error,
        "summary": {
            "passed": sum(r.result is Result.PASS for r in results),
            "failed": sum(r.result is Result.FAIL for r in results),
            "errors": sum(r.result is Result.ERROR for r in results),
            "seconds": round(seconds, 3),
        },
        "checks": [
            {
                "namespace": r.check.namespace,
                "database": r.check.database,
                **_target_json(r.check.target),
                "expected": r.check.expected,
                "observed": r.observation.outcome.value,
                "result": r.result.value,
                "seconds": None if r.seconds is None else round(r.seconds, 3),
                "detail": r.observation.detail,
            }
            for r in results
        ],
        "unconfirmedDenials": list(unconfirmed_denials(results)),
    }


# --- The command ------------------------------------------------------------------------------

def load_config(stack: str, project_dir: Path) -> tuple[StackConfig, str | None]:
    """The stack's config, and the kubectl context its `kubernetes:context` names, if any."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise CannotVerify(f"no stack file {path.name} in {project_dir}: pass --stack with an existing stack")
    try:
        stack_file = read_stack_file(path)
        config = stack_file.stack_config()
    except ConfigError as error:
        raise CannotVerify(str(error)) from None
    if not config.test_clients:
        raise CannotVerify(f"{path.name} deploys no test client pods: set {PROJECT}:testClients: true and pulumi up")
    if not config.grants:
        raise CannotVerify(f"{path.name} declares no grants: there is no access matrix to verify")
    return config, stack_file.kubernetes_context


def run_checks(config: StackConfig, kubectl: Kubectl, timeout: float, clock: Clock, progress: TextIO) -> list[CheckResult]:
    """Resolve each database's ServiceEntry, then probe every matrix cell, reporting progress as it goes."""
    targets = {
        database.name: endpoint_from_service_entry(
            config.egress_namespace, database.name, kubectl.get_service_entry(config.egress_namespace, database.name))
        for database in config.databases
    }
    checks = plan_checks(config, targets)
    results = []
    for index, check in enumerate(checks, start=1):
        progress.write(progress_line(index, len(checks), check) + " ")
        progress.flush()
        result = run_check(kubectl, check, timeout, clock)
        timing = "not run" if result.seconds is None else f"{result.seconds:.2f}s"
        progress.write(f"{result.result.value} ({timing})\n")
        progress.flush()
        results.append(result)
    return results


def _exec_timeout(text: str) -> float:
    seconds = float(text)
    if seconds <= PG_ISREADY_CONNECT_TIMEOUT_SECONDS:
        # Otherwise a denied connection, which pg_isready waits out, would end as a timeout ERROR.
        raise argparse.ArgumentTypeError(f"must exceed pg_isready's own {PG_ISREADY_CONNECT_TIMEOUT_SECONDS}s connect timeout")
    return seconds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.verify",
        description="Probe every (namespace, database) pair of a deployed stack with pg_isready and "
                    "compare with the access matrix its config promises.",
        epilog="Exit codes: 0 all passed, 1 a check failed, 2 could not verify (or some checks errored).",
    )
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml holds the matrix (default: dev)")
    parser.add_argument("--context", help="kubectl context to use (default: the stack's kubernetes:context, else the "
                                          "kubeconfig's current context)")
    parser.add_argument("--timeout", type=_exec_timeout, default=DEFAULT_EXEC_TIMEOUT_SECONDS,
                        help=f"seconds allowed for each kubectl exec (default: {DEFAULT_EXEC_TIMEOUT_SECONDS:g})")
    parser.add_argument("--json", action="store_true", help="print a machine-readable result on stdout")
    return parser.parse_args(argv)


def main(
    argv: Sequence[str] | None = None,
    *,
    executor: Executor | None = None,
    clock: Clock = time.monotonic,
    project_dir: Path = ROOT,
) -> int:
    args = parse_args(argv)
    started = clock()
    context = None
    try:
        config, stack_context = load_config(args.stack, project_dir)
        # The cluster the stack deploys to, unless told otherwise: never whatever is current.
        kubectl = Kubectl(executor or SubprocessExecutor(), args.context or stack_context)
        context = preflight(kubectl)
    except CannotVerify as error:
        print(f"verify: cannot verify stack {args.stack!r}: {error}", file=sys.stderr)
        if args.json:
            print(json.dumps(report_json(args.stack, context, [], clock() - started, str(error)), indent=2))
        return EXIT_NOT_VERIFIED
    print(f"verify: stack {args.stack!r} on context {context!r}", file=sys.stderr)
    results = run_checks(config, kubectl, args.timeout, clock, sys.stderr)
    seconds = clock() - started
    if args.json:
        print(json.dumps(report_json(args.stack, context, results, seconds), indent=2))
    else:
        print(render_report(results, seconds))
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
