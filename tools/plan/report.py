"""The plan's report: what the analysis computes from the written manifests, against what the stack
config declares. One JSON document (`plan.json`, `--format json`), and its text and Mermaid views.

The analysis reads only the manifests; the config speaks only for the declared side. So a
difference is a real one: the manifests would not give what the config promises.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis import (
    AccessMatrix,
    Decision,
    Finding,
    MeshIndex,
    ObjectRef,
    Request,
    Severity,
    access_matrix,
    align_columns,
    analyze,
    default_clients,
    evaluate,
    render_findings,
)
from analysis.manifests import SERVICE_ENTRY
from analysis.matrix import OTHER_DESTINATIONS
from analysis.render import node_ids
from components.values import Dataplane
from stack import StackConfig
from stack.access import access_matrix as declared_matrix
from stack.access import declared_clients, test_client
from stack.access import sample_requests as declared_sample_requests
from stack.outputs import target_kind, target_record

FORMAT = "ambient-egress.plan/1"
OTHER = "other"  # what --explain takes for the any-other-destination column
EXIT_OK, EXIT_DIFFERS, EXIT_BAD_INPUT = 0, 1, 2
MAX_TABLE_CELLS = 400
"""The text view prints the whole matrix only while it stays readable; `--matrix` forces it."""
MERMAID_MAX_EDGES = 500
"""Mermaid's default `maxEdges`: a diagram with more is not drawn."""
# The order in which a verdict lets more through, for telling an opened cell from a closed one.
OPENNESS = {"DENY": 0, "UNDECIDED": 1, "LIMITED": 2, "ALLOW": 3, "BYPASS": 3, "OPEN": 4}


@dataclass(frozen=True)
class Analysed:
    """The analysis of one plan: its matrix and findings, and the config it is judged against."""

    config: StackConfig
    index: MeshIndex
    matrix: AccessMatrix
    findings: list[Finding]


def analyse(index: MeshIndex, config: StackConfig) -> Analysed:
    """The matrix over every client the manifests or the config name, for the stack's Istio version."""
    rows = sorted(set(default_clients(index)) | set(declared_clients(config)))
    version = config.istio.version
    return Analysed(config, index, access_matrix(index, rows, istio_version=version), analyze(index, istio_version=version))


def _target_destinations(analysed: Analysed) -> dict[str, list[str]]:
    """Each target's destination labels: one per port of its ServiceEntry in the egress namespace."""
    by_entry: dict[ObjectRef, list[str]] = {}
    for destination in analysed.matrix.destinations:
        by_entry.setdefault(destination.service_entry, []).append(destination.label)
    egress = analysed.config.egress_namespace
    return {target: by_entry.get(ObjectRef(egress, target), []) for target in analysed.config.targets}


def combined(verdicts: Sequence[str]) -> str:
    """One target's verdict from its ports': alike, or LIMITED where only HTTP ports open some
    requests and the rest stay closed; MISSING without a ServiceEntry; MIXED otherwise."""
    kinds = set(verdicts)
    if not kinds:
        return "MISSING"
    if len(kinds) == 1:
        return verdicts[0]
    return "LIMITED" if kinds == {"LIMITED", "DENY"} else "MIXED"


def differences(analysed: Analysed) -> list[dict[str, str]]:
    """Every declared cell the manifests do not give, with the analysis's reasons."""
    destinations = _target_destinations(analysed)
    found = []
    for client, row in sorted(declared_matrix(analysed.config).items()):
        for target, declared in sorted(row.items()):
            labels = destinations[target]
            verdicts = [analysed.matrix.verdict(client, label) for label in labels]
            computed = combined([verdict.decision.value for verdict in verdicts])
            if computed != declared:
                reason = "; ".join(f"{label}: {verdict.reason}" for label, verdict in zip(labels, verdicts, strict=True))
                found.append({"client": client, "target": target, "declared": declared, "computed": computed,
                              "reason": reason or "no ServiceEntry for it in the manifests"})
    return found


def sample_requests(analysed: Analysed) -> list[dict[str, str]]:
    """Each declared sample request with the verdict the manifests give it."""
    config, checks = analysed.config, []
    ports = {service.name: service.http_ports[0].number for service in config.services if service.http_ports}
    for sample in declared_sample_requests(config):
        namespace, _, account = sample["client"].partition("/sa/")
        request = Request(namespace, ObjectRef(config.egress_namespace, sample["target"]), ports[sample["target"]],
                          service_account=account or "default", trust_domain=config.trust_domain,
                          method=sample["method"], path=sample["path"])
        verdict = evaluate(analysed.index, request, istio_version=config.istio.version)
        checks.append({**sample, "computed": verdict.decision.value, "reason": verdict.reason})
    return checks


def targets(analysed: Analysed) -> list[dict[str, Any]]:
    """What a verifier dials for each target, read from the rendered ServiceEntry."""
    config = analysed.config
    found = []
    for target in config.targets:
        ref = ObjectRef(config.egress_namespace, target)
        entry = analysed.index.get(SERVICE_ENTRY, ref)
        found.append(target_record(target, target_kind(config, target), str(ref), entry.spec if entry else {}))
    return found


def report(analysed: Analysed, *, stack: str, manifests: str, objects: int, label_patches: int,
           placeholders: Mapping[str, str]) -> dict[str, Any]:
    """The whole plan as one JSON-able document; its shape is documented in the README."""
    config, matrix = analysed.config, analysed.matrix
    verdicts = {client: {d.label: matrix.verdict(client, d.label).decision.value for d in matrix.destinations}
                for client in matrix.clients}
    others = {client: matrix.other_destinations[client].decision.value for client in matrix.clients}
    found_differences = differences(analysed)
    samples = sample_requests(analysed)
    mismatched_samples = [sample for sample in samples if sample["declared"] != sample["computed"]]
    errors = [finding for finding in analysed.findings if finding.severity is Severity.ERROR]
    return {
        "format": FORMAT,
        "stack": stack,
        "istioVersion": config.istio.version,
        "manifests": manifests,
        "objects": objects,
        "labelPatches": label_patches,
        "placeholderAddresses": dict(sorted(placeholders.items())),
        "waypoint": None if config.dataplane is Dataplane.SIDECAR else f"{config.egress_namespace}/{config.waypoint_name}",
        "clients": list(matrix.clients),
        "targets": targets(analysed),
        "verdicts": verdicts,
        "otherDestinations": others,
        "declared": declared_matrix(config),
        "testClients": {grant.namespace: test_client(grant) for grant in config.grants} if config.test_clients else {},
        "sampleRequests": samples,
        "differences": found_differences,
        "findings": [{"code": str(f.code), "severity": str(f.severity), "resource": f.resource, "message": f.message}
                     for f in analysed.findings],
        "counts": dict(sorted(Counter(value for row in verdicts.values() for value in row.values()).items())),
        "exitCode": EXIT_DIFFERS if errors or found_differences or mismatched_samples else EXIT_OK,
    }


def as_json(plan: Mapping[str, Any]) -> str:
    return json.dumps(plan, indent=2, sort_keys=True) + "\n"


# --- text ------------------------------------------------------------------------------------------

def _table(plan: Mapping[str, Any]) -> list[str]:
    destinations = sorted({label for row in plan["verdicts"].values() for label in row})
    rows = [["client", *destinations, OTHER_DESTINATIONS]]
    rows += [[client, *(plan["verdicts"][client][label] for label in destinations), plan["otherDestinations"][client]]
             for client in plan["clients"]]
    return align_columns(rows)


def _counted(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def render_text(plan: Mapping[str, Any], analysed: Analysed, *, full_matrix: bool = False,
                explain: Iterable[tuple[str, str]] = ()) -> str:
    """Counts first; the matrix while it fits; findings; every difference with its reason."""
    cells = sum(len(row) for row in plan["verdicts"].values())
    counts = ", ".join(f"{count} {verdict}" for verdict, count in plan["counts"].items()) or "none"
    others = ", ".join(f"{count} {verdict}" for verdict, count in sorted(Counter(plan["otherDestinations"].values()).items()))
    clients, destinations = len(plan["clients"]), cells // max(len(plan["clients"]), 1)
    lines = [f"Access for Istio {plan['istioVersion']}: {_counted(clients, 'client')} × "
             f"{_counted(destinations, 'destination')} = {_counted(cells, 'cell')}: {counts}; "
             f"{OTHER_DESTINATIONS} destination: {others or 'no clients'}", ""]
    if full_matrix or cells <= MAX_TABLE_CELLS:
        lines += [*_table(plan), ""]
    else:
        lines += [f"(the {cells}-cell matrix is left out; --matrix prints it, and plan.json holds every cell)", ""]
    if plan["sampleRequests"]:
        rows = [("client", "request", "declared", "manifests")] + [
            (check["client"], f"{check['method']} {check['target']}{check['path']}", check["declared"],
             check["computed"] if check["declared"] == check["computed"] else f"{check['computed']}  <-- {check['reason']}")
            for check in plan["sampleRequests"]
        ]
        lines += ["HTTP sample requests:", *align_columns(rows), ""]
    unchecked = _unchecked_limited(plan, analysed.config)
    if unchecked:
        lines += [f"Note: method- or path-limited grants of {', '.join(unchecked)} are checked only by their "
                  "sampleRequests; declare some", ""]
    lines.append(render_findings(analysed.findings) or "No findings.")
    if plan["differences"]:
        lines += ["", "The manifests do not give the declared access:"]
        lines += [f"  {d['client']} -> {d['target']}: declared {d['declared']}, manifests give {d['computed']} ({d['reason']})"
                  for d in plan["differences"]]
    for client, asked in explain:
        lines += ["", *explanation(analysed, client, asked)]
    return "\n".join(lines)


def explanation(analysed: Analysed, client: str, asked: str) -> list[str]:
    """Why a cell has its verdict; `asked` is a destination label, a target's name (every port), or
    `other` for any external destination no ServiceEntry declares."""
    if client not in analysed.matrix.clients:
        return [f"{client}: no such client in this plan (clients: {', '.join(analysed.matrix.clients)})"]
    if asked in (OTHER, OTHER_DESTINATIONS):
        verdict = analysed.matrix.other_destinations[client]
        return [f"{client} -> {OTHER_DESTINATIONS}: {verdict.decision.value} ({verdict.reason})"]
    labels = [asked] if "/" in asked else _target_destinations(analysed).get(asked, [])
    known = {destination.label for destination in analysed.matrix.destinations}
    if not labels or not set(labels) <= known:
        return [f"{asked}: no such destination or target in this plan"]
    return [f"{client} -> {label}: {(verdict := analysed.matrix.verdict(client, label)).decision.value} ({verdict.reason})"
            for label in labels]


def _unchecked_limited(plan: Mapping[str, Any], config: StackConfig) -> list[str]:
    limited = {target for row in plan["declared"].values() for target, cell in row.items() if cell == Decision.LIMITED.value}
    return sorted(limited - {service.name for service in config.services if service.sample_requests})


# --- Mermaid ---------------------------------------------------------------------------------------

class TooLargeForMermaid(Exception):
    """More edges than Mermaid draws."""


_ARROWS = {"ALLOW": "-- ALLOW -->", "LIMITED": "-- LIMITED -->", "DENY": "-. DENY .->", "OPEN": "== OPEN ==>",
           "BYPASS": "== BYPASS ==>", "UNDECIDED": "-. UNDECIDED .->"}


def render_mermaid(plan: Mapping[str, Any], *, all_edges: bool = False) -> str:
    """Clients on the left, destinations on the right; the edges that let something through, or
    every edge with `all_edges`."""
    edges = [(client, label, verdict) for client in plan["clients"] for label, verdict in plan["verdicts"][client].items()
             if all_edges or verdict != "DENY"]
    if len(edges) > MERMAID_MAX_EDGES:
        raise TooLargeForMermaid(
            f"the diagram would have {len(edges)} edges, and Mermaid draws at most {MERMAID_MAX_EDGES}; "
            "use --format json or text, or plan a smaller stack")
    ids = node_ids("ns", sorted({client for client, _, _ in edges}))
    ids.update(node_ids("se", sorted({label for _, label, _ in edges})))
    lines = ["flowchart LR"]
    lines += [f'  {ids[client]}["{client}"]' for client in plan["clients"] if client in ids]
    lines += [f'  {ids[label]}[("{label}")]' for label in sorted({label for _, label, _ in edges})]
    lines += [f"  {ids[client]} {_ARROWS[verdict]} {ids[label]}" for client, label, verdict in edges]
    return "\n".join(lines)
