"""Istio ambient semantics over a MeshIndex: which namespaces are enrolled, which waypoint serves a
ServiceEntry, which ports it declares, and which AuthorizationPolicies that waypoint applies to it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from .istio import Behaviour, Istio
from .manifests import AUTHORIZATION_POLICY, GATEWAY, GATEWAY_CLASS, SERVICE_ENTRY, MeshIndex, ObjectRef, Resource
from .policy import Policy, TargetRef, parse_policy

DATAPLANE_MODE = "istio.io/dataplane-mode"
USE_WAYPOINT = "istio.io/use-waypoint"
USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace"
WAYPOINT_CLASS = "istio-waypoint"
# The waypoint parses these as HTTP; every other protocol it proxies as opaque TCP.
_HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC", "GRPC-WEB"}


class Enrollment(Enum):
    # The values complete the sentence "namespace X ...".
    AMBIENT = "is ambient-enrolled"
    NOT_ENROLLED = "is not ambient-enrolled"
    UNKNOWN = "has no Namespace manifest"


def enrollment(index: MeshIndex, namespace: str) -> Enrollment:
    manifest = index.namespace(namespace)
    if manifest is None:
        return Enrollment.UNKNOWN
    return Enrollment.AMBIENT if manifest.labels.get(DATAPLANE_MODE) == "ambient" else Enrollment.NOT_ENROLLED


def is_http_protocol(protocol: str) -> bool:
    return protocol.upper() in _HTTP_PROTOCOLS


def is_waypoint(gateway: Resource) -> bool:
    return gateway.kind == GATEWAY and gateway.spec.get("gatewayClassName") == WAYPOINT_CLASS


@dataclass(frozen=True)
class WaypointBinding:
    service_entry: ObjectRef
    waypoint: ObjectRef | None  # what the labels ask for; None when nothing binds the ServiceEntry
    labelled_by: str  # the object whose labels chose the waypoint
    gateway: Resource | None  # the waypoint itself, when it exists

    @property
    def enforced(self) -> bool:
        return self.gateway is not None

    def __str__(self) -> str:
        if self.waypoint is None:
            return f"ServiceEntry {self.service_entry} is not bound to a waypoint"
        if self.gateway is None:
            return (
                f"ServiceEntry {self.service_entry} is bound to waypoint {self.waypoint} by the labels of "
                f"{self.labelled_by}, but no {WAYPOINT_CLASS} Gateway of that name exists"
            )
        return f"ServiceEntry {self.service_entry} is bound to waypoint {self.waypoint}"


def waypoint_binding(index: MeshIndex, service_entry: Resource) -> WaypointBinding:
    """The ServiceEntry's own `istio.io/use-waypoint` label wins over its namespace's; `none` opts out."""
    namespace = index.namespace(service_entry.namespace)
    candidates = (service_entry, namespace) if namespace is not None else (service_entry,)
    labelled = next((resource for resource in candidates if USE_WAYPOINT in resource.labels), None)
    if labelled is None or labelled.labels[USE_WAYPOINT] == "none":
        return WaypointBinding(service_entry.ref, None, "", None)
    waypoint = ObjectRef(
        labelled.labels.get(USE_WAYPOINT_NAMESPACE, service_entry.namespace), labelled.labels[USE_WAYPOINT]
    )
    gateway = index.get(GATEWAY, waypoint)
    return WaypointBinding(
        service_entry.ref, waypoint, str(labelled), gateway if gateway is not None and is_waypoint(gateway) else None
    )


@dataclass(frozen=True)
class ServicePort:
    number: int
    name: str
    protocol: str

    @property
    def http(self) -> bool:
        return is_http_protocol(self.protocol)


def service_entry_ports(service_entry: Resource) -> tuple[ServicePort, ...]:
    ports = []
    for port in service_entry.spec.get("ports") or []:
        name = port.get("name", "")
        # Without an explicit protocol Istio reads it from the port name's prefix, e.g. `http-web`.
        protocol = port.get("protocol") or name.partition("-")[0]
        ports.append(ServicePort(int(port["number"]), name, protocol.upper()))
    return tuple(ports)


def service_entry_hosts(service_entry: Resource) -> tuple[str, ...]:
    return tuple(service_entry.spec.get("hosts") or ())


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
