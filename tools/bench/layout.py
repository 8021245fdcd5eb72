"""One AuthorizationPolicy per grant (what the program renders) against one per database.

For the same access: object count, manifest bytes, an estimate of the Envoy RBAC config the
waypoint receives, and what a one-grant change rewrites. Sizes without a mock run get their
policies synthesized from the program's own one-grant policies, renamed (checked against a mock
run first). Pure: manifests in, numbers out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .formula import resources
from .topology import Topology

PolicyTemplate = tuple[dict[str, Any], dict[str, Any], str, str]
"""The allow-nothing and the grant policy of a one-grant stack, its database's and namespace's names."""


def _is_policy(manifest: Mapping[str, Any]) -> bool:
    return manifest.get("kind") == "AuthorizationPolicy"


def _is_grant_policy(manifest: Mapping[str, Any]) -> bool:
    return _is_policy(manifest) and bool(manifest.get("spec", {}).get("rules"))


def _target(policy: Mapping[str, Any]) -> tuple[str, str]:
    return policy["metadata"]["namespace"], policy["spec"]["targetRefs"][0]["name"]


def per_database_layout(policies: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The same access as one ALLOW policy per target: its grants' rules with the same `to` merge
    their sources into one namespaces list and one principals list, which Istio ORs exactly as
    separate rules. A target nobody is granted keeps its allow-nothing policy (an ALLOW without
    rules), so the per-database policy is also the baseline that keeps the target closed."""
    by_target: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    closed: dict[tuple[str, str], Mapping[str, Any]] = {}
    for policy in policies:
        if _is_grant_policy(policy):
            by_target.setdefault(_target(policy), []).append(policy)
        else:
            closed[_target(policy)] = policy
    merged: list[dict[str, Any]] = [dict(policy) for key, policy in closed.items() if key not in by_target]
    for (_, target), policies in by_target.items():
        by_operation: dict[str, dict[str, set[str]]] = {}
        for policy in policies:
            for rule in policy["spec"]["rules"]:
                key = json.dumps(rule.get("to", []), sort_keys=True)
                sources = by_operation.setdefault(key, {"namespaces": set(), "principals": set()})
                for source in rule.get("from", []):
                    for kind in ("namespaces", "principals"):
                        sources[kind].update(source["source"].get(kind, ()))
        rules = []
        for key, sources in by_operation.items():
            from_ = [{"source": {kind: sorted(values)}} for kind, values in sources.items() if values]
            rules.append({"from": from_, "to": json.loads(key)})
        template = policies[0]
        merged.append({
            "apiVersion": template["apiVersion"],
            "kind": "AuthorizationPolicy",
            "metadata": {**template["metadata"], "name": f"allow-{target}"},
            "spec": {"targetRefs": template["spec"]["targetRefs"], "action": "ALLOW", "rules": rules},
        })
    return merged


def _peer_principal(match: Mapping[str, Any]) -> dict[str, Any]:
    return {"filterState": {"key": "io.istio.peer_principal", "stringMatch": match}}


def envoy_rbac_policies(policy: Mapping[str, Any]) -> dict[str, Any]:
    """A model of the Envoy RBAC policies istiod renders for one ALLOW AuthorizationPolicy on a
    waypoint: one named policy per rule, its `to` as permissions (ports, methods, paths) and its
    `from` as principals (a namespace becomes a regex on the peer's SPIFFE identity, a principal an
    exact match). An estimate of the shape and size, not istiod's exact output."""
    metadata = policy["metadata"]
    rendered = {}
    for index, rule in enumerate(policy["spec"].get("rules", [])):
        permissions = []
        for to in rule.get("to", []) or [{}]:
            operation = to.get("operation", {})
            clauses: list[dict[str, Any]] = []
            if operation.get("ports"):
                clauses.append({"orRules": {"rules": [{"destinationPort": int(port)} for port in operation["ports"]]}})
            if operation.get("methods"):
                clauses.append({"orRules": {"rules": [{"header": {"name": ":method", "stringMatch": {"exact": method}}}
                                                      for method in operation["methods"]]}})
            if operation.get("paths"):
                clauses.append({"orRules": {"rules": [
                    {"urlPath": {"path": {"exact": path}}} for path in operation["paths"]]}})
            permissions.append({"andRules": {"rules": clauses or [{"any": True}]}})
        principals = []
        for source in rule.get("from", []) or [{}]:
            spec = source.get("source", {})
            ids = [_peer_principal({"safeRegex": {"regex": f".+/ns/{re.escape(namespace)}/.+"}})
                   for namespace in spec.get("namespaces", [])]
            ids += [_peer_principal({"exact": f"spiffe://{principal}"}) for principal in spec.get("principals", [])]
            principals.append({"andIds": {"ids": [{"orIds": {"ids": ids}}]}} if ids else {"any": True})
        rendered[f"ns[{metadata['namespace']}]-policy[{metadata['name']}]-rule[{index}]"] = {
            "permissions": permissions, "principals": principals,
        }
    return rendered


def envoy_rbac_bytes(policies: Iterable[Mapping[str, Any]]) -> int:
    """Bytes (compact JSON) of the RBAC network filters the waypoint gets: one filter per target
    ServiceEntry, holding the rendered policies of every ALLOW policy that targets it."""
    filters: dict[tuple[str, str], dict[str, Any]] = {}
    for policy in policies:
        filters.setdefault(_target(policy), {}).update(envoy_rbac_policies(policy))
    total = 0
    for rendered in filters.values():
        rbac_filter = {
            "name": "envoy.filters.network.rbac",
            "typedConfig": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC",
                "statPrefix": "tcp.",
                "rules": {"action": "ALLOW", "policies": rendered},
            },
        }
        total += len(json.dumps(rbac_filter, separators=(",", ":")))
    return total


def layout_metrics(manifests: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-grant (as rendered: an allow-nothing policy per target and one policy per grant)
    against per-database (one policy per target) for the same access.

    A one-grant change creates or deletes one grant policy in the per-grant layout, and rewrites
    its target's whole policy in the per-database one: the `change_bytes` are those objects'
    sizes, mean and max over the granted targets' policies."""
    per_grant = [policy for policy in manifests if _is_policy(policy)]
    per_database = per_database_layout(per_grant)
    grant_sizes = [len(json.dumps(policy)) for policy in per_grant if _is_grant_policy(policy)]
    database_sizes = [len(json.dumps(policy)) for policy in per_database if _is_grant_policy(policy)]

    def summary(policies: Sequence[Mapping[str, Any]], changed: list[int]) -> dict[str, Any]:
        return {
            "policies": len(policies),
            "manifest_bytes": sum(len(json.dumps(policy)) for policy in policies),
            "rbac_bytes": envoy_rbac_bytes(policies),
            "change_objects": 1,
            "change_bytes_mean": sum(changed) / max(len(changed), 1),
            "change_bytes_max": max(changed, default=0),
        }

    return {"per_grant": summary(per_grant, grant_sizes), "per_database": summary(per_database, database_sizes)}


def policy_template(manifests: Iterable[Mapping[str, Any]], tiny: Topology) -> PolicyTemplate:
    """The allow-nothing and the grant policy as the program renders them, from the manifests of a
    run of `tiny`, a one-grant topology."""
    policies = [dict(manifest) for manifest in manifests if _is_policy(manifest)]
    grants = [policy for policy in policies if _is_grant_policy(policy)]
    closed = [policy for policy in policies if not _is_grant_policy(policy)]
    if len(grants) != 1 or len(closed) != 1:
        raise ValueError(f"expected one allow-nothing and one grant policy from a one-grant run, got {len(policies)}")
    return closed[0], grants[0], tiny.database_names()[0], tiny.namespace_names()[0]


def synthesized_policies(topology: Topology, template: Sequence[Any]) -> list[dict[str, Any]]:
    """Every AuthorizationPolicy of `topology`, made from the one-grant run's by renaming database
    and namespace: the text the program renders, without running it."""
    closed, grant, database, namespace = template
    closed_text, grant_text = json.dumps(closed), json.dumps(grant)
    if database not in closed_text or database not in grant_text or namespace not in grant_text:
        raise ValueError("the policy templates no longer name their database and namespace")
    closed_text = closed_text.replace(database, "\x00DB\x00")
    grant_text = grant_text.replace(database, "\x00DB\x00").replace(namespace, "\x00NS\x00")
    policies = [json.loads(closed_text.replace("\x00DB\x00", name)) for name in topology.database_names()]
    policies += [
        json.loads(grant_text.replace("\x00DB\x00", name).replace("\x00NS\x00", grantee))
        for grantee, names in topology.grant_lists().items() for name in names
    ]
    return policies


def layout_rows(topologies: Sequence[Topology], measured: Mapping[Topology, Mapping[str, Any]],
                template: Sequence[Any]) -> list[dict[str, Any]]:
    """Layout metrics per size: from a mock run where there is one, else from policies synthesized
    from the program's one-grant template, which must first reproduce a mock run's exactly."""
    for topology, metrics in list(measured.items())[:1]:
        if layout_metrics(synthesized_policies(topology, template)) != metrics:
            raise ValueError(f"{topology.label}: synthesized grant policies differ from the mock run's")
    records = []
    for topology in topologies:
        if topology in measured:
            metrics, origin = measured[topology], "mock run"
        else:
            metrics, origin = layout_metrics(synthesized_policies(topology, template)), "synthesized"
        total = resources(topology.shape())
        for layout, values in metrics.items():
            # Fewer policies are fewer registered resources; nothing else changes.
            rounded = {key: round(value, 1) if isinstance(value, float) else value for key, value in values.items()}
            records.append({"size": topology.label, "source": origin, "layout": layout.replace("_", "-"), **rounded,
                            "resources": total - metrics["per_grant"]["policies"] + values["policies"]})
    return records
