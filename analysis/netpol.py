"""Kubernetes NetworkPolicy semantics: label selectors, and whether the policies of a namespace let
traffic out of its pods (egress) or into them (ingress).

The manifests never show the pods themselves, only what selects them, so a selector's verdict can
be unknown. Every answer here leans to "allowed" when unsure: the callers look for ways around the
waypoint, and a way that might exist is one to report. Rule `ports` are not judged for the same
reason: a rule counts as allowing every port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

from .manifests import NETWORK_POLICY, MeshIndex, ObjectRef, Resource

# Kubernetes puts this label on every namespace.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# Istio puts this label on the pods of every Gateway API gateway, waypoints included, and on no others.
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"

Selector = Mapping[str, Any]  # a LabelSelector: `matchLabels` and `matchExpressions`
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# True or False, or None when the answer turns on labels the manifests do not show.
Ternary = bool | None


@dataclass(frozen=True)
class Labels:
    """What the manifests tell of an object's labels."""

    known: Mapping[str, str]
    # A pod carries more labels than the selector that picked it; a Namespace manifest shows them all.
    complete: bool = False
    lacking: frozenset[str] = field(default_factory=frozenset)  # keys it surely does not carry


# A client namespace's ordinary workloads: any labels, but none of a gateway's.
CLIENT_PODS = Labels({}, lacking=frozenset({GATEWAY_NAME_LABEL}))


def namespace_labels(index: MeshIndex, namespace: str) -> Labels:
    """A Namespace's labels with the name label Kubernetes adds; all but that unknown without a manifest."""
    manifest = index.namespace(namespace)
    known = {**(manifest.labels if manifest else {}), NAMESPACE_NAME_LABEL: namespace}
    return Labels(known, complete=manifest is not None)


def selector_matches(selector: Selector | None, labels: Labels) -> Ternary:
    """A LabelSelector's verdict on `labels`; an absent or empty selector matches everything."""
    selector = selector or {}
    requirements = [(key, "In", [value]) for key, value in (selector.get("matchLabels") or {}).items()]
    requirements += [
        (expression.get("key", ""), expression.get("operator", ""), expression.get("values") or [])
        for expression in selector.get("matchExpressions") or []
    ]
    verdicts = [_requirement_holds(key, operator, values, labels) for key, operator, values in requirements]
    # Requirements are AND'ed: one that fails decides, otherwise one unknown leaves the whole unknown.
    if False in verdicts:
        return False
    return None if None in verdicts else True


def _requirement_holds(key: str, operator: str, values: Iterable[str], labels: Labels) -> Ternary:
    if key in labels.known:
        value: str | None = labels.known[key]
    elif labels.complete or key in labels.lacking:
        value = None
    else:
        return None
    holds = {
        "In": value is not None and value in values,
        "NotIn": value is None or value not in values,
        "Exists": value is not None,
        "DoesNotExist": value is None,
    }
    return holds.get(operator)


class Direction(Enum):
    INGRESS = "Ingress"
    EGRESS = "Egress"

    @property
    def peers_field(self) -> str:
        return "from" if self is Direction.INGRESS else "to"


@dataclass(frozen=True)
class Peer:
    """One `from`/`to` entry: an ipBlock, or pods chosen by namespace and pod selectors."""

    namespace_selector: Selector | None
    pod_selector: Selector | None
    ip_block: Mapping[str, Any] | None

    def matches_ip(self, address: ipaddress.IPv4Address) -> bool:
        """Whether the peer covers an address outside the cluster: only an ipBlock can."""
        return any(address in network for network in self.networks())

    def networks(self) -> tuple[IPNetwork, ...]:
        """The addresses an ipBlock admits, its `cidr` less its `except` ranges, as disjoint networks;
        none for a peer of pods."""
        if self.ip_block is None:
            return ()
        allowed = [ipaddress.ip_network(self.ip_block.get("cidr", ""), strict=False)]
        for text in self.ip_block.get("except") or []:
            excepted = ipaddress.ip_network(text, strict=False)
            allowed = [part for network in allowed for part in _without(network, excepted)]
        return tuple(allowed)

    def may_match_pods(self, policy_namespace: str, namespace: str, namespace_labels: Labels, pods: Labels) -> bool:
        if self.ip_block is not None:
            # Pod IPs are not in the manifests, and whether a CNI matches them against ipBlocks varies.
            return True
        if self.namespace_selector is None:
            in_namespace = namespace == policy_namespace
        else:
            in_namespace = selector_matches(self.namespace_selector, namespace_labels) is not False
        return in_namespace and selector_matches(self.pod_selector, pods) is not False


def _without(network: IPNetwork, excepted: IPNetwork) -> list[IPNetwork]:
    """`network` less `excepted`; a range of the other IP version excepts nothing."""
    if isinstance(network, ipaddress.IPv4Network) and isinstance(excepted, ipaddress.IPv4Network):
        return _exclude(network, excepted)
    if isinstance(network, ipaddress.IPv6Network) and isinstance(excepted, ipaddress.IPv6Network):
        return _exclude(network, excepted)
    return [network]


SameVersion = TypeVar("SameVersion", ipaddress.IPv4Network, ipaddress.IPv6Network)


def _exclude(network: SameVersion, excepted: SameVersion) -> list[IPNetwork]:
    if excepted.subnet_of(network):
        return list(network.address_exclude(excepted))
    return [] if network.subnet_of(excepted) else [network]


@dataclass(frozen=True)
class NetworkPolicy:
    ref: ObjectRef
    pod_selector: Selector
    # Per direction the policy governs, its rules, each a tuple of peers; no peers admits every peer.
    rules: Mapping[Direction, tuple[tuple[Peer, ...], ...]]


def parse_network_policy(resource: Resource) -> NetworkPolicy:
    spec = resource.spec
    # Without policyTypes a policy governs ingress, and egress too when it has an `egress` section.
    default_types = ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]
    directions = [Direction(value) for value in spec.get("policyTypes") or default_types]
    return NetworkPolicy(
        ref=resource.ref,
        pod_selector=spec.get("podSelector") or {},
        rules={
            direction: tuple(
                tuple(_parse_peer(peer or {}) for peer in (rule or {}).get(direction.peers_field) or [])
                for rule in spec.get(direction.value.lower()) or []
            )
            for direction in directions
        },
    )


def _parse_peer(peer: Mapping[str, Any]) -> Peer:
    return Peer(peer.get("namespaceSelector"), peer.get("podSelector"), peer.get("ipBlock"))


def network_policies(index: MeshIndex, namespace: str) -> tuple[NetworkPolicy, ...]:
    """A namespace's NetworkPolicies, parsed once per index."""
    key = ("network policies", namespace)
    return index.derived(key, lambda: tuple(map(parse_network_policy, index.in_namespace(NETWORK_POLICY, namespace))))


def governing(index: MeshIndex, namespace: str, pods: Labels, direction: Direction) -> tuple[NetworkPolicy, ...] | None:
    """The policies whose `direction` rules `pods` in `namespace` get, or None when some of them are
    not isolated in that direction and so may send (or accept) anything.

    A pod no policy of that direction selects is not isolated. Once every pod is isolated, every
    policy that may select one of them counts, since a pod gets the union of its policies' rules.
    """
    selecting = [
        (policy, selector_matches(policy.pod_selector, pods))
        for policy in network_policies(index, namespace)
        if direction in policy.rules
    ]
    if not any(verdict is True for _, verdict in selecting):
        return None
    return tuple(policy for policy, verdict in selecting if verdict is not False)


def allows(
    index: MeshIndex, namespace: str, pods: Labels, direction: Direction, peer_matches: Callable[[Peer], bool]
) -> bool:
    """Whether some of `pods` in `namespace` may send (egress) or accept (ingress) traffic to or from
    a peer that `peer_matches`."""
    policies = governing(index, namespace, pods, direction)
    if policies is None:
        return True
    return any(not peers or any(map(peer_matches, peers)) for policy in policies for peers in policy.rules[direction])
