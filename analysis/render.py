"""Findings and access matrices as text for a terminal, or as Mermaid for a GitHub pull request."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .catalogue import Finding
from .matrix import OTHER_DESTINATIONS, AccessMatrix
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


# Client and destination ids start `ns_` and `se_`, so this one is always free.
_OTHER_ID = "other_external"


def align_columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells as lines of left-aligned columns two spaces apart, without trailing spaces."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def render_findings(findings: Iterable[Finding]) -> str:
    return "\n".join(str(finding) for finding in findings)


def render_table(matrix: AccessMatrix, *, reasons: bool = True) -> str:
    """One row per client and one column per destination, the last for any other external
    destination, then, unless `reasons` is false, the reason behind every cell, row by row."""
    header = ["client", *(destination.label for destination in matrix.destinations), OTHER_DESTINATIONS]
    rows = [
        [
            client,
            *(matrix.verdict(client, d.label).decision.value for d in matrix.destinations),
            matrix.other_destinations[client].decision.value,
        ]
        for client in matrix.clients
    ]
    lines = align_columns([header, *rows])
    explained = []
    for client in matrix.clients if reasons else ():
        cells = [(d.label, matrix.verdict(client, d.label)) for d in matrix.destinations]
        for label, verdict in [*cells, (OTHER_DESTINATIONS, matrix.other_destinations[client])]:
            explained.append(f"{client} -> {label}: {verdict.decision.value} ({verdict.reason})")
    return "\n".join([*lines, "", *explained]) if explained else "\n".join(lines)


def render_mermaid(matrix: AccessMatrix) -> str:
    """`flowchart LR`: client namespaces on the left, ServiceEntry ports (cylinders) on the right,
    and a hexagon for any other external destination; an edge per cell, the hexagon's after the rest."""
    client_ids = node_ids("ns", matrix.clients)
    destination_ids = node_ids("se", [d.label for d in matrix.destinations])
    lines = ["flowchart LR"]
    lines += [f'  {client_ids[client]}["{client}"]' for client in matrix.clients]
    lines += [f'  {destination_ids[d.label]}[("{d.label}")]' for d in matrix.destinations]
    if matrix.clients:
        lines.append(f'  {_OTHER_ID}{{{{"{OTHER_DESTINATIONS}"}}}}')
    edges = [(client_ids[client], destination_ids[d.label], verdict) for client, d, verdict in matrix.entries()]
    edges += [(client_ids[client], _OTHER_ID, matrix.other_destinations[client]) for client in matrix.clients]
    edges_by_decision: dict[Decision, list[str]] = {decision: [] for decision in Decision}
    for edge, (source, target, verdict) in enumerate(edges):
        lines.append(f"  {source} {_ARROWS[verdict.decision]} {target}")
        edges_by_decision[verdict.decision].append(str(edge))
    lines += [
        f"  linkStyle {','.join(numbers)} stroke:{_EDGE_COLOURS[decision]}"
        for decision, numbers in edges_by_decision.items()
        if numbers
    ]
    return "\n".join(lines)


def node_ids(prefix: str, labels: Iterable[str]) -> dict[str, str]:
    """Mermaid-safe ids (`rds-demo-1` -> `ns_rds_demo_1`), kept distinct when two labels sanitise alike."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for label in labels:
        base = f"{prefix}_{re.sub(r'[^A-Za-z0-9]', '_', label)}"
        node_id, suffix = base, 1
        while node_id in taken:
            suffix += 1
            node_id = f"{base}_{suffix}"
        ids[label] = node_id
        taken.add(node_id)
    return ids
