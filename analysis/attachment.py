"""Which AuthorizationPolicies a waypoint applies to a ServiceEntry's traffic."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from .binding import WaypointBinding
from .istio import Behaviour, Istio
from .manifests import AUTHORIZATION_POLICY, GATEWAY, GATEWAY_CLASS, SERVICE_ENTRY, MeshIndex, Resource
from .mesh import WAYPOINT_CLASS
from .policy import Policy, TargetRef, parse_policy


def policies(index: MeshIndex) -> tuple[Policy, ...]:
    """Every AuthorizationPolicy, parsed once per index."""
    return index.derived("policies", lambda: tuple(map(parse_policy, index.all(AUTHORIZATION_POLICY))))


def _policies_by_target(index: MeshIndex) -> Mapping[tuple[str, TargetRef], tuple[Policy, ...]]:
    """Policies by (their namespace, a targetRef of theirs), built once per index."""

    def build() -> Mapping[tuple[str, TargetRef], tuple[Policy, ...]]:
        by_target: dict[tuple[str, TargetRef], list[Policy]] = defaultdict(list)
        for policy in policies(index):
            for target in dict.fromkeys(policy.targets):
                by_target[(policy.ref.namespace, target)].append(policy)
        return {key: tuple(found) for key, found in by_target.items()}

    return index.derived("policies by target", build)


def _attachments(
    service_entry: Resource, binding: WaypointBinding, istio: Istio
) -> tuple[tuple[str, TargetRef], ...]:
    """(namespace, targetRef) pairs that attach a policy to this ServiceEntry's traffic, as
    `pilot/pkg/model/policyattachment.go` (ShouldAttachPolicy) has it: the ServiceEntry itself from
    its own namespace (targetRefs cannot cross namespaces); the waypoint Gateway from the waypoint's
    namespace; and, from 1.25, GatewayClass `istio-waypoint` from the root namespace, which covers
    every waypoint. Policies without targetRefs never apply at a waypoint."""
    targets = [(service_entry.namespace, TargetRef(SERVICE_ENTRY, service_entry.name))]
    if binding.gateway is not None:
        targets.append((binding.gateway.namespace, TargetRef(GATEWAY, binding.gateway.name)))
        if istio.has(Behaviour.GATEWAY_CLASS_POLICIES):
            targets.append((istio.root_namespace, TargetRef(GATEWAY_CLASS, WAYPOINT_CLASS)))
    return tuple(targets)


def applicable_policies(
    index: MeshIndex, service_entry: Resource, binding: WaypointBinding, istio: Istio
) -> tuple[Policy, ...]:
    """Every policy the waypoint applies to the ServiceEntry's traffic, dry-run ones included."""
    by_target = _policies_by_target(index)
    attachments = _attachments(service_entry, binding, istio)
    found = (policy for target in attachments for policy in by_target.get(target, ()))
    # A policy targeting both the ServiceEntry and the waypoint applies once; sorted as the index is.
    return tuple(sorted(dict.fromkeys(found), key=lambda policy: policy.ref))
