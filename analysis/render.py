"""Findings and access matrices as text for a terminal, or as Mermaid for a GitHub pull request."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .catalogue import Finding
from .matrix import AccessMatrix
from .verdict import Decision

# Mermaid arrows: ALLOW and LIMITED solid (some traffic passes the waypoint), DENY and UNDECIDED
# dotted, OPEN and BYPASS thick because they are the ones to notice, each in its own colour: OPEN
# means nothing enforces, BYPASS that a route goes around it, UNDECIDED that the analysis cannot tell.
_ARROWS = {
    Decision.ALLOW: "-- ALLOW -->",
    Decision.LIMITED: "-- LIMITED -->",
    Decision.DENY: "-. DENY .->",
    Decision.UNDECIDED: "-. UNDECIDED .->",
    Decision.OPEN: "== OPEN ==>",
    Decision.BYPASS: "== BYPASS ==>",
}
_EDGE_COLOURS = {
    Decision.ALLOW: "#2da44e",
    Decision.LIMITED: "#bf8700",
    Decision.DENY: "#8c959f",
    Decision.UNDECIDED: "#0969da",
    Decision.OPEN: "#d1242f",
    Decision.BYPASS: "#8250df",
}


def align_columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells as lines of left-aligned columns two spaces apart, without trailing spaces."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def render_findings(findings: Iterable[Finding]) -> str:
    return "\n".join(str(finding) for finding in findings)


def render_table(matrix: AccessMatrix) -> str:
    """One row per client and one column per destination, then the reason behind every cell."""
    header = ["client", *(destination.label for destination in matrix.destinations)]
    rows = [
        [client, *(matrix.verdict(client, d.label).decision.value for d in matrix.destinations)]
        for client in matrix.clients
    ]
    lines = align_columns([header, *rows])
    reasons = [
        f"{client} -> {destination.label}: {verdict.decision.value} ({verdict.reason})"
        for client, destination, verdict in matrix.entries()
    ]
    return "\n".join([*lines, "", *reasons]) if reasons else "\n".join(lines)


def render_mermaid(matrix: AccessMatrix) -> str:
    """`flowchart LR`: client namespaces on the left, ServiceEntry ports (cylinders) on the right."""
    client_ids = _node_ids("ns", matrix.clients)
    destination_ids = _node_ids("se", [d.label for d in matrix.destinations])
    lines = ["flowchart LR"]
    lines += [f'  {client_ids[client]}["{client}"]' for client in matrix.clients]
    lines += [f'  {destination_ids[d.label]}[("{d.label}")]' for d in matrix.destinations]
    edges_by_decision: dict[Decision, list[str]] = {decision: [] for decision in Decision}
    for edge, (client, destination, verdict) in enumerate(matrix.entries()):
        lines.append(f"  {client_ids[client]} {_ARROWS[verdict.decision]} {destination_ids[destination.label]}")
        edges_by_decision[verdict.decision].append(str(edge))
    lines += [
        f"  linkStyle {','.join(edges)} stroke:{_EDGE_COLOURS[decision]}"
        for decision, edges in edges_by_decision.items()
        if edges
    ]
    return "\n".join(lines)


def _node_ids(prefix: str, labels: Iterable[str]) -> dict[str, str]:
    """Mermaid-safe ids (`rds-demo-1` -> `ns_rds_demo_1`), kept distinct when two labels sanitise alike."""
    ids: dict[str, str] = {}
    for label in labels:
        base = f"{prefix}_{re.sub(r'[^A-Za-z0-9]', '_', label)}"
        node_id, suffix = base, 1
        while node_id in ids.values():
            suffix += 1
            node_id = f"{base}_{suffix}"
        ids[label] = node_id
    return ids
