"""Whether a policy clause, rule or policy matches a request: yes, no, or not for certain.

Besides yes and no, a match can turn on the HTTP request itself (a rule on `methods` when the
request's method is not given: some requests match, others do not), or on something the analysis
does not evaluate (client pod IPs, JWTs). The two are kept apart: the first makes a cell LIMITED,
the second makes it UNDECIDED, and neither is ever reported as a plain ALLOW or DENY.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


class Truth(Enum):
    NO = "no"
    YES = "yes"
    DEPENDS = "depends on the request"  # on HTTP attributes the request leaves open
    UNKNOWN = "unknown"  # on something the analysis does not evaluate


@dataclass(frozen=True)
class Match:
    truth: Truth
    # For DEPENDS and UNKNOWN, what it turns on: the fields as the policy writes them, with the
    # reason the analysis cannot evaluate them, e.g. `ipBlocks (client pod IPs are not in the manifests)`.
    on: frozenset[str] = frozenset()

    def negated(self) -> Match:
        flipped = {Truth.YES: Truth.NO, Truth.NO: Truth.YES}
        return Match(flipped.get(self.truth, self.truth), self.on)


YES = Match(Truth.YES)
NO = Match(Truth.NO)


def depends_on(field: str) -> Match:
    return Match(Truth.DEPENDS, frozenset({field}))


def unknown(field: str, why: str) -> Match:
    return Match(Truth.UNKNOWN, frozenset({f"{field} ({why})"}))


def all_of(matches: Iterable[Match]) -> Match:
    """AND: one NO decides; otherwise anything unknown leaves the whole unknown, and anything that
    depends on the request makes the whole depend on it."""
    return _combine(matches, decisive=Truth.NO, otherwise=YES)


def any_of(matches: Iterable[Match]) -> Match:
    """OR: one YES decides; otherwise unknown before depends, as for `all_of`; nothing at all is NO."""
    return _combine(matches, decisive=Truth.YES, otherwise=NO)


def _combine(matches: Iterable[Match], *, decisive: Truth, otherwise: Match) -> Match:
    # One pass, since policies are judged for many clients: the first decisive match settles it.
    open_on: dict[Truth, list[frozenset[str]]] = {}
    for match in matches:
        if match.truth is decisive:
            return YES if decisive is Truth.YES else NO
        if match.truth in (Truth.UNKNOWN, Truth.DEPENDS):
            open_on.setdefault(match.truth, []).append(match.on)
    for open_truth in (Truth.UNKNOWN, Truth.DEPENDS):
        if open_truth in open_on:
            return Match(open_truth, frozenset().union(*open_on[open_truth]))
    return otherwise
