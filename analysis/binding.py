"""Which waypoint, if any, serves a ServiceEntry's traffic: istiod's binding rules, from
`pilot/pkg/serviceregistry/ambient/waypoints.go` (fetchWaypointForTarget, fetchWaypointForService,
makeAllowedRoutes, AllowsAttachmentFromNamespace).

  - The ServiceEntry's own `istio.io/use-waypoint` label wins over its namespace's; `none` opts
    out. `istio.io/use-waypoint-namespace`, beside it, names the waypoint's namespace.
  - The waypoint is a Gateway of class `istio-waypoint` (assumed ready: istiod binds only once it
    reports `status.addresses`, which rendered manifests never show).
  - It serves ServiceEntries only for `istio.io/waypoint-for` `service` (the default) or `all`, read
    from the Gateway, else from its GatewayClass.
  - Its HBONE listener (port 15008) admits the ServiceEntry's namespace through
    `allowedRoutes.namespaces`: `Same` (the default, also without such a listener), `All`, or a
    `Selector` on the namespace's labels. Otherwise istiod reports `AttachmentDenied` and binds nothing.

Before any of that, ztunnel must be able to capture the traffic, which it does by address: the
ServiceEntry's `spec.addresses`, or one Istio allocates (`pilot/pkg/networking/serviceentry/
ip_autoallocation.go`: never for `resolution: NONE`, nor with the label
`networking.istio.io/enable-autoallocate-ip: "false"`). And up to 1.29, a ServiceEntry whose
`addresses` hold a CIDR that is not a single IP is left out of ambient altogether (`services.go`
at 1.29.0 returns no service when `toNetworkAddressFromCidr` fails; CIDRs work from 1.30).

An unbound or uncaptured ServiceEntry's traffic goes straight out: nothing enforces policy on it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .istio import Behaviour, Istio
from .manifests import GATEWAY, GATEWAY_CLASS, MeshIndex, ObjectRef, Resource
from .mesh import USE_WAYPOINT, USE_WAYPOINT_NAMESPACE, WAYPOINT_CLASS, is_waypoint
from .netpol import namespace_labels, selector_matches

WAYPOINT_FOR = "istio.io/waypoint-for"
AUTO_ALLOCATE = "networking.istio.io/enable-autoallocate-ip"
_SERVES_SERVICE_ENTRIES = {"service", "all"}
_DEFAULT_TRAFFIC = "service"
_HBONE_PORT = 15008


class Problem(Enum):
    """Why a ServiceEntry is not bound, or why the analysis cannot tell whether it is."""

    NO_WAYPOINT = "not bound"
    WAYPOINT_NOT_FOUND = "waypoint not found"
    ATTACHMENT_DENIED = "attachment denied"
    NOT_FOR_SERVICES = "waypoint not for services"
    ADMISSION_UNKNOWN = "admission unknown"
    DROPPED_FROM_AMBIENT = "dropped from ambient"
    NOT_CAPTURED = "no address to capture"


@dataclass(frozen=True)
class WaypointBinding:
    service_entry: ObjectRef
    waypoint: ObjectRef | None  # what the labels ask for; None when nothing asks
    labelled_by: str  # the object whose labels chose the waypoint
    gateway: Resource | None  # the waypoint, once the ServiceEntry is bound to it
    problem: Problem | None = None
    detail: str = ""  # what the problem turns on, completing `__str__`

    @property
    def enforced(self) -> bool:
        return self.gateway is not None

    @property
    def undecided(self) -> bool:
        return self.problem is Problem.ADMISSION_UNKNOWN

    def __str__(self) -> str:
        entry, waypoint = f"ServiceEntry {self.service_entry}", f"waypoint {self.waypoint}"
        asks = f"{entry} asks for {waypoint} (labels of {self.labelled_by})"
        if self.problem is Problem.NO_WAYPOINT:
            return f"{entry} {self.detail or 'is not bound to a waypoint'}"
        if self.problem is Problem.WAYPOINT_NOT_FOUND:
            return (
                f"{entry} is bound to {waypoint} by the labels of {self.labelled_by}, but no "
                f"{WAYPOINT_CLASS} Gateway of that name exists"
            )
        if self.problem is Problem.ATTACHMENT_DENIED:
            return f"{asks}, but its HBONE listener admits {self.detail}, so istiod does not bind it (AttachmentDenied)"
        if self.problem is Problem.NOT_FOR_SERVICES:
            return f"{asks}, but {self.detail}, so the waypoint serves no ServiceEntry"
        if self.problem is Problem.ADMISSION_UNKNOWN:
            return f"cannot decide whether {waypoint} admits {entry}: {self.detail}"
        if self.problem in (Problem.DROPPED_FROM_AMBIENT, Problem.NOT_CAPTURED):
            return f"{entry} {self.detail}"
        return f"{entry} is bound to {waypoint}"


def waypoint_binding(index: MeshIndex, service_entry: Resource, istio: Istio) -> WaypointBinding:
    """The binding istiod makes for the ServiceEntry, worked out once per index and installation."""
    return index.derived(("waypoint binding", service_entry.ref, istio), lambda: _bind(index, service_entry, istio))


def _bind(index: MeshIndex, service_entry: Resource, istio: Istio) -> WaypointBinding:
    addresses = [str(address) for address in service_entry.spec.get("addresses") or []]
    ranges = [address for address in addresses if is_range(address)]
    if ranges and not istio.has(Behaviour.CIDR_ADDRESSES):
        dropped = (
            f"lists CIDR {ranges[0]} in spec.addresses, which Istio {istio.version} does not support in ambient "
            f"({Behaviour.CIDR_ADDRESSES.since} does), so it is left out of ambient and bound to no waypoint"
        )
        return WaypointBinding(service_entry.ref, None, "", None, Problem.DROPPED_FROM_AMBIENT, dropped)
    labelled = waypoint_labelled(index, service_entry)
    if labelled is None:
        return WaypointBinding(service_entry.ref, None, "", None, Problem.NO_WAYPOINT)
    if labelled.labels[USE_WAYPOINT] == "none":
        opted_out = f"opts out of waypoints ({USE_WAYPOINT}: none on {labelled})"
        return WaypointBinding(service_entry.ref, None, str(labelled), None, Problem.NO_WAYPOINT, opted_out)
    waypoint = ObjectRef(
        labelled.labels.get(USE_WAYPOINT_NAMESPACE, service_entry.namespace), labelled.labels[USE_WAYPOINT]
    )
    found = index.get(GATEWAY, waypoint)

    def unbound(problem: Problem, detail: str = "") -> WaypointBinding:
        return WaypointBinding(service_entry.ref, waypoint, str(labelled), None, problem, detail)

    if found is None or not is_waypoint(found):
        return unbound(Problem.WAYPOINT_NOT_FOUND)
    traffic, labelled_on = _traffic_type(index, found)
    if traffic not in _SERVES_SERVICE_ENTRIES:
        return unbound(Problem.NOT_FOR_SERVICES, f"{labelled_on} is labelled {WAYPOINT_FOR}={traffic}")
    admitted, admits = _admits(index, found, service_entry.namespace)
    if admitted is None:
        return unbound(Problem.ADMISSION_UNKNOWN, admits)
    if not admitted:
        return unbound(Problem.ATTACHMENT_DENIED, admits)
    no_address = None if addresses else why_no_address(service_entry)
    if no_address is not None:
        uncaptured = (
            f"has no spec.addresses and {no_address}, so ztunnel cannot capture its traffic: clients reach "
            "its hosts' real addresses and the waypoint never sees them"
        )
        return unbound(Problem.NOT_CAPTURED, uncaptured)
    return WaypointBinding(service_entry.ref, waypoint, str(labelled), found)


def waypoint_labelled(index: MeshIndex, service_entry: Resource) -> Resource | None:
    """The object whose `istio.io/use-waypoint` label applies to the ServiceEntry: its own, else its namespace's."""
    namespace = index.namespace(service_entry.namespace)
    candidates = (service_entry, namespace) if namespace is not None else (service_entry,)
    return next((resource for resource in candidates if USE_WAYPOINT in resource.labels), None)


def asks_for_waypoint(index: MeshIndex, service_entry: Resource) -> bool:
    """Whether the ServiceEntry's labels name a waypoint, whether or not istiod binds it there."""
    labelled = waypoint_labelled(index, service_entry)
    return labelled is not None and labelled.labels[USE_WAYPOINT] != "none"


def is_range(address: str) -> bool:
    """A CIDR that is not a single IP, e.g. `10.0.0.0/24` (`10.0.0.1/32` is one IP)."""
    try:
        network = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return False
    return network.num_addresses > 1


def why_no_address(service_entry: Resource) -> str | None:
    """Why Istio allocates no address for a ServiceEntry without `addresses`, if it does not."""
    if service_entry.spec.get("resolution") == "NONE":
        return "resolution NONE, which gets no allocated address"
    if service_entry.labels.get(AUTO_ALLOCATE, "").lower() == "false":
        return f"{AUTO_ALLOCATE}: false"
    return None


def _traffic_type(index: MeshIndex, gateway: Resource) -> tuple[str, str]:
    """The waypoint's traffic type and the object that sets it: the Gateway's label wins over its
    GatewayClass's; neither means `service`."""
    gateway_class = index.get(GATEWAY_CLASS, ObjectRef("", gateway.spec.get("gatewayClassName", "")))
    for labelled in (gateway, gateway_class):
        if labelled is not None and WAYPOINT_FOR in labelled.labels:
            return labelled.labels[WAYPOINT_FOR], str(labelled)
    return _DEFAULT_TRAFFIC, str(gateway)


def _admits(index: MeshIndex, gateway: Resource, namespace: str) -> tuple[bool | None, str]:
    """Whether the waypoint's HBONE listener admits routes from `namespace` (None: the manifests
    cannot tell), and what it admits, for the reason."""
    listeners: list[Mapping[str, Any]] = gateway.spec.get("listeners") or []
    hbone = [entry for entry in listeners if entry.get("protocol") == "HBONE" and entry.get("port") == _HBONE_PORT]
    allowed: Mapping[str, Any] = ((hbone[0] if hbone else {}).get("allowedRoutes") or {}).get("namespaces") or {}
    origin = allowed.get("from", "Same")
    if origin == "All":
        return True, "every namespace"
    if origin == "Selector":
        # A missing selector selects nothing (metav1.LabelSelectorAsSelector(nil)).
        selector = allowed.get("selector")
        admitted = False if selector is None else selector_matches(selector, namespace_labels(index, namespace))
        if admitted is None:
            return None, (
                f"its HBONE listener admits namespaces by label selector, and the manifests do not show "
                f"namespace {namespace}'s labels"
            )
        return admitted, f"only namespaces its allowedRoutes selector matches, which {namespace} does not"
    return gateway.namespace == namespace, f"only its own namespace {gateway.namespace} (allowedRoutes from: Same)"
