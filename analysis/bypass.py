"""Ways around the waypoint: connections that reach a ServiceEntry's destination without the waypoint
ever seeing them, because ztunnel sends only traffic addressed to a ServiceEntry's hosts or
addresses to the waypoint and passes everything else through.

Two routes stay open unless something closes them:
  raw IP      dialling the IP a host names (`203.0.113.10.nip.io`, or the IP itself) instead of the
              host; closed by listing the IP in `spec.addresses`, or by an egress NetworkPolicy in
              the client namespace that denies it; and, where the IP lands on in-cluster pods (see
              `backends`), by their ingress NetworkPolicy;
  in-cluster  dialling the Service or pods behind the ServiceEntry directly
              (`postgres-1.db.svc.cluster.local`); closed by an ingress NetworkPolicy that admits
              only the waypoint's pods, or by the client's egress policy.

Backends in an ambient namespace are not counted here: ztunnel carries those connections within
the mesh, and EGW0301 reports them. Only ambient clients and ServiceEntries a waypoint enforces have
routes *around* the waypoint: for the rest, nothing enforces in the first place and the verdict is
OPEN already.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .backends import Backend, backends, host_ip
from .binding import waypoint_binding
from .istio import Istio
from .manifests import SERVICE_ENTRY, Kind, MeshIndex, ObjectRef, Resource
from .mesh import Enrollment, enrollment, service_entry_hosts
from .netpol import CLIENT_PODS, Direction, allows, namespace_labels

RAW_IP = "raw IP"
IN_CLUSTER = "in-cluster"


@dataclass(frozen=True, order=True)
class Bypass:
    route: str  # RAW_IP or IN_CLUSTER
    kind: Kind  # what to fix: the ServiceEntry to pin the IP on, or the backend's Service (or ServiceEntry)
    resource: ObjectRef
    ip: str = ""  # the address dialled, on the RAW_IP route

    def __str__(self) -> str:
        return f"{RAW_IP} {self.ip}" if self.route == RAW_IP else f"{IN_CLUSTER} {self.resource}"


def unpinned_ips(service_entry: Resource) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPs the hosts spell out that `spec.addresses` (addresses or CIDRs) does not cover."""
    pinned = [ipaddress.ip_network(address, strict=False) for address in service_entry.spec.get("addresses") or []]
    ips = dict.fromkeys(filter(None, map(host_ip, service_entry_hosts(service_entry))))
    return tuple(ip for ip in ips if not any(ip in network for network in pinned))


def unpinnable_hosts(index: MeshIndex, service_entry: Resource, istio: Istio) -> tuple[str, ...]:
    """DNS-named hosts of an enforced ServiceEntry whose IPs nothing in the manifests accounts for:
    no `spec.addresses`, and no backend whose ingress policy would judge connections to them."""
    if service_entry.spec.get("addresses") or backends(index, service_entry):
        return ()
    if not waypoint_binding(index, service_entry, istio).enforced:
        return ()
    return tuple(host for host in service_entry_hosts(service_entry) if host_ip(host) is None)


def bypasses(index: MeshIndex, client_namespace: str, service_entry: Resource, istio: Istio) -> tuple[Bypass, ...]:
    """The routes by which pods in `client_namespace` reach the ServiceEntry's destination around its
    waypoint, whatever their identity: raw IP and in-cluster routes."""
    if not namespace_routes_possible(index, service_entry, istio):
        return ()
    if enrollment(index, client_namespace) is not Enrollment.AMBIENT:
        return ()
    outside = _outside_backends(index, service_entry)
    found = [
        Bypass(RAW_IP, SERVICE_ENTRY, service_entry.ref, str(ip))
        for ip in unpinned_ips(service_entry)
        if _reaches_ip(index, client_namespace, ip, outside)
    ]
    found += [
        Bypass(IN_CLUSTER, backend.kind, backend.ref)
        for backend in outside
        if _pods_admit(index, backend, client_namespace) and _egress_allows_pods(index, client_namespace, backend)
    ]
    return tuple(found)


def namespace_routes_possible(index: MeshIndex, service_entry: Resource, istio: Istio) -> bool:
    """Whether `bypasses` may find a route for some namespace: the ServiceEntry is enforced, and has
    an unpinned IP or backends."""

    def build() -> bool:
        if not waypoint_binding(index, service_entry, istio).enforced:
            return False
        return bool(unpinned_ips(service_entry) or backends(index, service_entry))

    return index.derived(("namespace routes possible", service_entry.ref, istio), build)


def _outside_backends(index: MeshIndex, service_entry: Resource) -> list[Backend]:
    return [b for b in backends(index, service_entry) if enrollment(index, b.namespace) is not Enrollment.AMBIENT]


def _reaches_ip(index: MeshIndex, namespace: str, ip: ipaddress.IPv4Address, outside: list[Backend]) -> bool:
    """Whether the pods of `namespace` may connect to `ip`: their egress allows it, and where it lands
    on in-cluster pods, their ingress admits the namespace."""
    if not allows(index, namespace, CLIENT_PODS, Direction.EGRESS, lambda peer: peer.matches_ip(ip)):
        return False
    landing = [backend for backend in outside if backend.answers(ip)]
    return not landing or any(_pods_admit(index, backend, namespace) for backend in landing)


def _pods_admit(index: MeshIndex, backend: Backend, client_namespace: str) -> bool:
    client_labels = namespace_labels(index, client_namespace)
    return allows(
        index,
        backend.namespace,
        backend.pods,
        Direction.INGRESS,
        lambda peer: peer.may_match_pods(backend.namespace, client_namespace, client_labels, CLIENT_PODS),
    )


def _egress_allows_pods(index: MeshIndex, client_namespace: str, backend: Backend) -> bool:
    backend_labels = namespace_labels(index, backend.namespace)
    return allows(
        index,
        client_namespace,
        CLIENT_PODS,
        Direction.EGRESS,
        lambda peer: peer.may_match_pods(client_namespace, backend.namespace, backend_labels, backend.pods),
    )
