"""Shadow ServiceEntries: a ServiceEntry that claims a host or address of one a waypoint serves,
without being bound to that waypoint, and so takes some clients' connections around it.

When several ServiceEntries claim one host or address, ztunnel picks one per client
(`src/state/service.rs`: `get_best_by_host`, `get_best_by_vip`; `src/dns/server.rs` for names):
  host     the one in the client's own namespace, in every release the analysis knows;
  address  from Istio 1.30 the one in the client's namespace (ztunnel PR #1829); before, the one
           written last, whatever the client's namespace.
For the clients of other namespaces, the tie is broken by an order the manifests do not show
(creation time from 1.29, arrival before), so they count as possibly captured.

What claims, exactly: a host both declare (ztunnel looks a name up exactly before any wildcard, so
a wildcard host does not claim a name another ServiceEntry declares exactly), if the shadow has an
address to be resolved to (`addresses`, or one Istio allocates); a single IP both list in
`addresses`; and from 1.30, addresses overlapping a CIDR the served ServiceEntry pins (a single IP
pinned exactly is matched before any CIDR). A shadow left out of ambient (a CIDR before 1.30)
claims nothing. Bound to no waypoint, the shadow sends what it takes straight out; bound to another
waypoint, that waypoint's policies judge it (the shadow's own matrix column).

A ValidatingAdmissionPolicy that denies ServiceEntries outside some namespaces (`request.namespace
in [...]`, bound with `validationActions: [Deny]`) stops new shadows there, not those that exist.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .binding import Problem, waypoint_binding, why_no_address
from .istio import Behaviour, Istio
from .manifests import (
    SERVICE_ENTRY,
    VALIDATING_ADMISSION_POLICY,
    VALIDATING_ADMISSION_POLICY_BINDING,
    MeshIndex,
    ObjectRef,
    Resource,
)
from .mesh import service_entry_hosts
from .netpol import IPNetwork

_NAMESPACE_ALLOW_LIST = re.compile(r"\s*request\.namespace\s+in\s+\[(?P<items>[^\]]*)\]\s*")
_QUOTED = re.compile(r"""\s*(?:'(?P<single>[^']*)'|"(?P<double>[^"]*)")\s*""")


@dataclass(frozen=True)
class Shadow:
    service_entry: Resource  # the shadow
    target: ObjectRef  # the ServiceEntry the waypoint serves
    waypoint: ObjectRef
    hosts: tuple[str, ...]  # the target's hosts it declares too
    addresses: tuple[str, ...]  # the target's addresses it claims, as the target writes them
    # Whether the clients of the shadow's own namespace surely get it; everyone else's may.
    captures_own_namespace: bool
    goes_straight_out: bool  # bound to no waypoint

    @property
    def claims(self) -> tuple[str, ...]:
        return (*self.hosts, *self.addresses)


@dataclass(frozen=True)
class Admission:
    """A ValidatingAdmissionPolicy, bound to deny, that admits ServiceEntries only in `namespaces`."""

    policy: Resource
    namespaces: frozenset[str]


def shadows(index: MeshIndex, target: ObjectRef, istio: Istio) -> tuple[Shadow, ...]:
    """The shadows of a ServiceEntry a waypoint serves, sorted by the shadow's address."""
    return _all_shadows(index, istio).get(target, ())


def all_shadows(index: MeshIndex, istio: Istio) -> tuple[Shadow, ...]:
    return tuple(shadow for found in _all_shadows(index, istio).values() for shadow in found)


def _all_shadows(index: MeshIndex, istio: Istio) -> Mapping[ObjectRef, tuple[Shadow, ...]]:
    return index.derived(("shadows", istio), lambda: _find(index, istio))


def _find(index: MeshIndex, istio: Istio) -> Mapping[ObjectRef, tuple[Shadow, ...]]:
    served = [se for se in index.all(SERVICE_ENTRY) if waypoint_binding(index, se, istio).enforced]
    by_host: dict[str, list[Resource]] = defaultdict(list)
    by_address: dict[IPNetwork, list[tuple[str, Resource]]] = defaultdict(list)
    for target in served:
        for host in service_entry_hosts(target):
            by_host[host.lower()].append(target)
        for text, network in _networks(target):
            by_address[network].append((text, target))
    # CIDRs pin ranges from 1.30; before, a ServiceEntry with one is not served at all.
    ranges = [(network, claim) for network, claims in by_address.items() if network.num_addresses > 1 for claim in claims]
    found: dict[ObjectRef, list[Shadow]] = defaultdict(list)
    for candidate in index.all(SERVICE_ENTRY):
        binding = waypoint_binding(index, candidate, istio)
        if binding.problem is Problem.DROPPED_FROM_AMBIENT:
            continue
        claims = _claims(candidate, by_host, by_address, ranges)
        for target, hosts, addresses in claims.values():
            waypoint = waypoint_binding(index, target, istio).gateway
            same_waypoint = binding.gateway is not None and waypoint is not None and binding.gateway.ref == waypoint.ref
            if target.ref == candidate.ref or waypoint is None or same_waypoint:
                continue
            found[target.ref].append(
                Shadow(
                    service_entry=candidate,
                    target=target.ref,
                    waypoint=waypoint.ref,
                    hosts=tuple(hosts),
                    addresses=tuple(dict.fromkeys(addresses)),
                    captures_own_namespace=not addresses or istio.has(Behaviour.LOCAL_ADDRESS_PREFERENCE),
                    goes_straight_out=not binding.enforced and not binding.undecided,
                )
            )
    return {ref: tuple(sorted(shadows, key=lambda shadow: shadow.service_entry.ref)) for ref, shadows in found.items()}


Claims = dict[ObjectRef, tuple[Resource, list[str], list[str]]]  # by served ServiceEntry: it, hosts, addresses


def _claims(
    candidate: Resource,
    by_host: Mapping[str, list[Resource]],
    by_address: Mapping[IPNetwork, list[tuple[str, Resource]]],
    ranges: list[tuple[IPNetwork, tuple[str, Resource]]],
) -> Claims:
    """What the candidate claims of each served ServiceEntry."""
    claims: Claims = {}
    if candidate.spec.get("addresses") or why_no_address(candidate) is None:
        for host in sorted({host.lower() for host in service_entry_hosts(candidate)}):
            for target in by_host.get(host, ()):
                claims.setdefault(target.ref, (target, [], []))[1].append(host)
    for _, network in _networks(candidate):
        exact = by_address.get(network, []) if network.num_addresses == 1 else []
        overlapping = [claim for pinned, claim in ranges if pinned.version == network.version and pinned.overlaps(network)]
        for text, target in [*exact, *overlapping]:
            claims.setdefault(target.ref, (target, [], []))[2].append(text)
    return claims


def _networks(service_entry: Resource) -> Iterator[tuple[str, IPNetwork]]:
    """Each of `spec.addresses` as written and as a network; what is no address is skipped."""
    for text in service_entry.spec.get("addresses") or []:
        network = _network(text)
        if network is not None:
            yield str(text), network


def _network(text: Any) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        return None


def service_entry_admission(index: MeshIndex) -> Admission | None:
    """The first (by name) admission policy that keeps ServiceEntries to a list of namespaces, if
    the manifests bind one to deny."""
    return next(_admissions(index), None)


def _admissions(index: MeshIndex) -> Iterator[Admission]:
    denying = {
        binding.spec.get("policyName")
        for binding in index.all(VALIDATING_ADMISSION_POLICY_BINDING)
        # A binding narrowed to some resources, or taking parameters, is not judged.
        if "Deny" in (binding.spec.get("validationActions") or [])
        and not binding.spec.get("matchResources")
        and not binding.spec.get("paramRef")
    }
    for policy in index.all(VALIDATING_ADMISSION_POLICY):
        if policy.name not in denying or not _matches_service_entry_creation(policy.spec):
            continue
        for validation in policy.spec.get("validations") or []:
            namespaces = _allowed_namespaces(str(validation.get("expression", "")))
            if namespaces is not None:
                yield Admission(policy, namespaces)
                break


def _matches_service_entry_creation(spec: Mapping[str, Any]) -> bool:
    constraints = spec.get("matchConstraints") or {}
    if constraints.get("namespaceSelector") or constraints.get("objectSelector"):
        return False

    def names(values: Any, wanted: str) -> bool:
        return bool({wanted, "*"} & set(values or []))

    return any(
        names(rule.get("apiGroups"), "networking.istio.io")
        and names(rule.get("resources"), "serviceentries")
        and names(rule.get("operations"), "CREATE")
        for rule in constraints.get("resourceRules") or []
    )


def _allowed_namespaces(expression: str) -> frozenset[str] | None:
    """The namespaces of `request.namespace in ['a', "b"]`; None for any other expression."""
    listed = _NAMESPACE_ALLOW_LIST.fullmatch(expression)
    if listed is None:
        return None
    items = [item for item in listed["items"].split(",") if item.strip()]
    quoted = [_QUOTED.fullmatch(item) for item in items]
    if any(match is None for match in quoted):
        return None
    return frozenset(match["single"] if match["single"] is not None else match["double"] for match in quoted if match)
