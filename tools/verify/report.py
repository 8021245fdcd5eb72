"""The verdict of a verification: two tables (status, then probes), what failed and why, what a
pass does not prove, a summary line, the JSON form and the exit code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis import align_columns

from .checks import UNDECLARED_VIA, CheckResult, Result, Rule
from .probes import HOLD_SECONDS, Outcome
from .status import StatusResult

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_NOT_VERIFIED = 2


@dataclass(frozen=True)
class Verification:
    stack: str
    context: str | None
    source: str | None
    status: Sequence[StatusResult] = ()
    checks: Sequence[CheckResult] = ()
    notes: Sequence[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    """Why verification could not run at all."""

    @property
    def results(self) -> list[Result]:
        return [entry.result for entry in self.status] + [entry.result for entry in self.checks]

    @property
    def exit_code(self) -> int:
        results = set(self.results)
        if self.error is None and Result.FAIL in results:
            return EXIT_FAILED
        proven = any(check.result is Result.PASS for check in self.checks)
        if self.error is not None or Result.ERROR in results or not proven:
            return EXIT_NOT_VERIFIED
        return EXIT_PASSED

    def count(self, result: Result) -> int:
        return self.results.count(result)


def _reached(results: Sequence[CheckResult], target: str) -> bool:
    return any(r.observation is not None and r.observation.outcome in (Outcome.REACHED, Outcome.REJECTING)
               for r in results if r.check.target == target)


def result_notes(results: Sequence[CheckResult]) -> list[str]:
    """What some passes do not prove: a denial no client ever saw reached, a connection held open."""
    notes = []
    denied = dict.fromkeys(r.check.target for r in results if r.check.rule is Rule.REFUSE and r.result is Result.PASS)
    for target in denied:
        if _reached(results, target):
            continue
        undeclared = any(r.check.target == target and r.check.via == UNDECLARED_VIA for r in results)
        if undeclared:
            notes.append(f"no client reached {target}, so its blocked results may mean the cluster cannot reach it at all, "
                         "not that the egress lockdown stopped it; check with a namespace that has no lockdown")
        else:
            notes.append(f"no client connected to {target}, so its DENY passes show it unreachable, not necessarily "
                         "denied; check that it is up")
    if any(r.observation is not None and r.observation.observed == "held open" for r in results):
        notes.append(f"held open: the connection stayed open {HOLD_SECONDS}s after two bytes were sent; the waypoint closes "
                     "a denied connection at once, and ztunnel and the waypoint give up dialling after 10s, so the "
                     "destination accepted it (it never said a word, so what listens there is not shown)")
    return notes


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render_status(status: Sequence[StatusResult]) -> str:
    rows = [("OBJECT", "CONDITION", "RESULT", "DETAIL")] + [(s.object, s.condition, s.result.value, s.detail) for s in status]
    return "\n".join(align_columns(rows))


def render_checks(results: Sequence[CheckResult]) -> str:
    header = ("CLIENT", "TARGET", "VIA", "ENDPOINT", "EXPECTED", "OBSERVED", "RESULT", "SECONDS")
    rows = [header] + [
        (r.check.client, r.check.target, r.check.via, r.check.endpoint, r.check.expected,
         r.observation.observed if r.observation else "-", r.result.value, _seconds(r.seconds))
        for r in results
    ]
    return "\n".join(align_columns(rows))


def summary_line(verification: Verification) -> str:
    counts = {result: verification.count(result) for result in Result}
    return (f"{counts[Result.PASS]} passed, {counts[Result.FAIL]} failed, {counts[Result.ERROR]} errors, "
            f"{counts[Result.SKIP]} skipped, {counts[Result.INFO]} reported in {verification.seconds:.2f}s")


def render_report(verification: Verification) -> str:
    lines = []
    if verification.status:
        lines += [render_status(verification.status), ""]
    if verification.checks:
        lines += [render_checks(verification.checks), ""]
    problems = [f"{s.result.value} {s.object} {s.condition}: {s.detail}" for s in verification.status
                if s.result in (Result.FAIL, Result.ERROR)]
    problems += [f"{r.result.value} {r.check.client} -> {r.check.target} ({r.check.via}, expected {r.check.expected}): {r.detail}"
                 for r in verification.checks if r.result is not Result.PASS]
    notes = [f"note: {note}" for note in verification.notes]
    for block in (problems, notes):
        if block:
            lines += [*block, ""]
    lines.append(summary_line(verification))
    return "\n".join(lines)


def report_json(verification: Verification) -> dict[str, Any]:
    return {
        "stack": verification.stack,
        "context": verification.context,
        "source": verification.source,
        "exitCode": verification.exit_code,
        "error": verification.error,
        "summary": {
            "passed": verification.count(Result.PASS), "failed": verification.count(Result.FAIL),
            "errors": verification.count(Result.ERROR), "skipped": verification.count(Result.SKIP),
            "reported": verification.count(Result.INFO), "seconds": round(verification.seconds, 3),
        },
        "status": [{"object": s.object, "condition": s.condition, "result": s.result.value, "detail": s.detail}
                   for s in verification.status],
        "checks": [
            {
                "client": r.check.client, "namespace": r.check.namespace, "target": r.check.target, "via": r.check.via,
                "endpoint": None if r.check.probe is None else r.check.endpoint, "expected": r.check.expected,
                "observed": r.observation.observed if r.observation else None, "result": r.result.value,
                "seconds": None if r.seconds is None else round(r.seconds, 3), "detail": r.detail,
            }
            for r in verification.checks
        ],
        "notes": list(verification.notes),
    }
