"""A verdict: whether a client reaches a destination, and why."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Decision(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    OPEN = "OPEN"  # reachable because nothing enforces a policy on the path
    LIMITED = "LIMITED"  # only some HTTP requests are allowed: it depends on their method, path, headers
    UNDECIDED = "UNDECIDED"  # the verdict turns on something the analysis does not evaluate
    BYPASS = "BYPASS"  # the waypoint does not allow everything, but a route around it reaches the database


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str
    # Routes around the waypoint that stay open, e.g. `raw IP 203.0.113.10`; `evaluate` judges only
    # the waypoint, so the access matrix fills this in.
    bypasses: tuple[str, ...] = ()
