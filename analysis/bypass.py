"""Ways around the waypoint: connections that reach a ServiceEntry's destination without the waypoint
ever seeing them, because ztunnel sends only traffic addressed to a ServiceEntry's hosts or
addresses to the waypoint and passes everything else through.

These routes stay open unless something closes them:
  raw IP      dialling the IP a host names (`203.0.113.10.nip.io`, or the IP itself) instead of the
              host; closed by listing the IP in `spec.addresses`, or by an egress NetworkPolicy in
              the client namespace that denies it; and, where the IP lands on in-cluster pods (see
              `backends`), by their ingress NetworkPolicy;
  in-cluster  dialling the Service or pods behind the ServiceEntry directly
              (`postgres-1.db.svc.cluster.local`); closed by an ingress NetworkPolicy that admits
              only the waypoint's pods, or by the client's egress policy;
  shadow      a ServiceEntry bound to no waypoint that claims the host or an address (see `shadow`):
              the connections ztunnel gives it go straight out; closed by deleting it;
  direct      a workload of the client's that opts out of capture (see `workloads`) dials the
              destination itself: its IPs, and for a DNS name the real addresses behind it, which
              only its namespace's egress NetworkPolicy can stop (see `egress`). Only the row of the
              workload's identity has it: its service account's row, or the bare namespace row
              when no policy singles that account out.

Backends in an ambient namespace are not counted here: ztunnel carries those connections within
the mesh, and EGW0301 reports them. Only ambient clients and ServiceEntries a waypoint enforces have
routes *around* the waypoint: for the rest, nothing enforces in the first place and the verdict is
OPEN already. Every answer leans to "open" when the manifests cannot tell (see `netpol`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .backends import Backend, backends, host_ip
from .binding import waypoint_binding
from .clients import singled_out
from .egress import pods_external_egress
from .istio import Istio
from .manifests import SERVICE_ENTRY, Kind, MeshIndex, ObjectRef, Resource
from .mesh import Enrollment, enrollment, service_entry_hosts
from .netpol import CLIENT_PODS, Direction, Labels, allows, namespace_labels
from .shadow import shadows
from .verdict import Decision
from .workloads import DEFAULT_SERVICE_ACCOUNT, OptOut, Workload, workloads

RAW_IP = "raw IP"
IN_CLUSTER = "in-cluster"
SHADOW = "shadow ServiceEntry"
DIRECT = "direct from"


@dataclass(frozen=True, order=True)
class Bypass:
    route: str  # RAW_IP, IN_CLUSTER, SHADOW or DIRECT
    # What to fix: the ServiceEntry to pin the IP on, the backend's Service (or ServiceEntry), the
    # shadow ServiceEntry, or the workload that opts out.
    kind: Kind
    resource: ObjectRef
    detail: str = ""  # the IP dialled (RAW_IP), or how the workload opts out (DIRECT)

    def __str__(self) -> str:
        if self.route == RAW_IP:
            return f"{RAW_IP} {self.detail}"
        if self.route == DIRECT:
            return f"{DIRECT} {self.kind.kind} {self.resource} ({self.detail})"
        return f"{self.route} {self.resource}"


def unpinned_ips(service_entry: Resource) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPs the hosts spell out that `spec.addresses` (addresses or CIDRs) does not cover."""
    pinned = [ipaddress.ip_network(address, strict=False) for address in service_entry.spec.get("addresses") or []]
    ips = dict.fromkeys(filter(None, map(host_ip, service_entry_hosts(service_entry))))
    return tuple(ip for ip in ips if not any(ip in network for network in pinned))


def dns_hosts(service_entry: Resource) -> tuple[str, ...]:
    """Its hosts that spell out no IP."""
    return tuple(host for host in service_entry_hosts(service_entry) if host_ip(host) is None)


def unpinnable_hosts(index: MeshIndex, service_entry: Resource, istio: Istio) -> tuple[str, ...]:
    """DNS-named hosts of an enforced ServiceEntry whose IPs nothing in the manifests accounts for:
    no `spec.addresses`, and no backend whose ingress policy would judge connections to them."""
    if service_entry.spec.get("addresses") or backends(index, service_entry):
        return ()
    if not waypoint_binding(index, service_entry, istio).enforced:
        return ()
    return dns_hosts(service_entry)


def bypasses(index: MeshIndex, client_namespace: str, service_entry: Resource, istio: Istio) -> tuple[Bypass, ...]:
    """The routes by which pods in `client_namespace` reach the ServiceEntry's destination around its
    waypoint, whatever their identity: raw IP, in-cluster and shadow routes."""
    if not namespace_routes_possible(index, service_entry, istio):
        return ()
    if enrollment(index, client_namespace) is not Enrollment.AMBIENT:
        return ()
    outside = _outside_backends(index, service_entry)
    found = [
        Bypass(RAW_IP, SERVICE_ENTRY, service_entry.ref, str(ip))
        for ip in unpinned_ips(service_entry)
        if _reaches_ip(index, client_namespace, CLIENT_PODS, ip, outside)
    ]
    found += in_cluster_routes(index, client_namespace, service_entry)
    found += [
        Bypass(SHADOW, SERVICE_ENTRY, shadow.service_entry.ref, ", ".join(shadow.claims))
        for shadow in shadows(index, service_entry.ref, istio)
        if shadow.goes_straight_out
    ]
    return tuple(found)


def in_cluster_routes(index: MeshIndex, client_namespace: str, service_entry: Resource) -> list[Bypass]:
    """The backends outside ambient that pods of `client_namespace` may connect to directly: the
    backends' ingress admits the namespace and its egress lets it out to them."""
    return [
        Bypass(IN_CLUSTER, backend.kind, backend.ref)
        for backend in _outside_backends(index, service_entry)
        if _pods_admit(index, backend, client_namespace) and _egress_allows_pods(index, client_namespace, backend)
    ]


def routes(
    index: MeshIndex, client_namespace: str, service_account: str, service_entry: Resource, istio: Istio
) -> tuple[Bypass, ...]:
    """Every route around the waypoint open to the workloads of `client_namespace` running as
    `service_account`: `bypasses`, and the direct routes of the workloads of that identity."""
    found = bypasses(index, client_namespace, service_entry, istio)
    if not opted_out(index, client_namespace, istio) or not waypoint_binding(index, service_entry, istio).enforced:
        return found
    return (*found, *_direct_routes(index, client_namespace, service_account, service_entry, istio))


def namespace_routes_possible(index: MeshIndex, service_entry: Resource, istio: Istio) -> bool:
    """Whether `bypasses` may find a route for some namespace: the ServiceEntry is enforced, and has
    an unpinned IP, backends or shadows."""

    def build() -> bool:
        if not waypoint_binding(index, service_entry, istio).enforced:
            return False
        return bool(unpinned_ips(service_entry) or backends(index, service_entry) or shadows(index, service_entry.ref, istio))

    return index.derived(("namespace routes possible", service_entry.ref, istio), build)


def opted_out(index: MeshIndex, namespace: str, istio: Istio) -> tuple[tuple[Workload, OptOut, str], ...]:
    """The workloads of an ambient namespace that leave capture, each with how and what says so."""

    def build() -> tuple[tuple[Workload, OptOut, str], ...]:
        if enrollment(index, namespace) is not Enrollment.AMBIENT:
            return ()
        found = ((workload, workload.opt_out(istio)) for workload in workloads(index, namespace))
        return tuple((workload, *opt_out) for workload, opt_out in found if opt_out is not None)

    return index.derived(("opted out", namespace, istio), build)


def _direct_routes(
    index: MeshIndex, client_namespace: str, service_account: str, service_entry: Resource, istio: Istio
) -> tuple[Bypass, ...]:
    return tuple(
        Bypass(DIRECT, workload.kind, workload.ref, written)
        for workload, opt_out, written in opted_out(index, client_namespace, istio)
        if on_row(index, client_namespace, service_account, workload)
        and reaches_directly(index, workload, opt_out, service_entry)
    )


def on_row(index: MeshIndex, client_namespace: str, service_account: str, workload: Workload) -> bool:
    """Whether the workload's routes belong on the row of that identity: its service account's, or
    the bare namespace row (`default`) when no policy singles its account out."""
    runs_as = workload.service_account
    return runs_as == service_account or (
        service_account == DEFAULT_SERVICE_ACCOUNT and (client_namespace, runs_as) not in singled_out(index)
    )


def reaches_directly(index: MeshIndex, workload: Workload, opt_out: OptOut, service_entry: Resource) -> bool:
    """Whether the workload's pods reach the destination themselves: a pod ztunnel does not capture
    dials every IP the ServiceEntry names; one whose names ztunnel does not resolve reaches a DNS
    name's real addresses (its other IPs ztunnel captures, or the raw-IP route already counts)."""
    if workload.host_network:
        # NetworkPolicy does not govern the host network: it reaches whatever it dials.
        return bool(named_ips(service_entry) or _resolves_past_the_mesh(index, service_entry))
    pods = Labels(workload.labels)
    if opt_out is OptOut.DNS_NOT_CAPTURED:
        return _resolves_past_the_mesh(index, service_entry) and _reaches_real_addresses(index, workload.namespace, pods)
    return pods_reach_directly(index, workload.namespace, pods, service_entry)


def pods_reach_directly(index: MeshIndex, namespace: str, pods: Labels, service_entry: Resource) -> bool:
    """Whether `pods` of `namespace`, dialling the destination with nothing of Istio on the way,
    reach it: an IP it names their egress allows (and, where that lands on in-cluster pods, their
    ingress admits), or for a DNS name resolved past the mesh, any external address."""
    if _resolves_past_the_mesh(index, service_entry) and _reaches_real_addresses(index, namespace, pods):
        return True
    outside = _outside_backends(index, service_entry)
    return any(_reaches_ip(index, namespace, pods, ip, outside) for ip in named_ips(service_entry))


def named_ips(service_entry: Resource) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPs the ServiceEntry names: those its hosts spell out, then its single-IP `addresses`."""
    named = [*filter(None, map(host_ip, service_entry_hosts(service_entry)))]
    named += [ip for ip in map(_single_ip, service_entry.spec.get("addresses") or []) if ip is not None]
    return tuple(dict.fromkeys(named))


def _resolves_past_the_mesh(index: MeshIndex, service_entry: Resource) -> bool:
    """A DNS-named host no in-cluster backend stands behind: its real addresses are external ones."""
    return bool(dns_hosts(service_entry)) and not backends(index, service_entry)


def _reaches_real_addresses(index: MeshIndex, namespace: str, pods: Labels) -> bool:
    return pods_external_egress(index, namespace, pods).decision is Decision.OPEN


def _single_ip(address: object) -> ipaddress.IPv4Address | None:
    network = ipaddress.ip_network(str(address), strict=False)
    if isinstance(network, ipaddress.IPv4Network) and network.num_addresses == 1:
        return network.network_address
    return None


def _outside_backends(index: MeshIndex, service_entry: Resource) -> list[Backend]:
    return [b for b in backends(index, service_entry) if enrollment(index, b.namespace) is not Enrollment.AMBIENT]


def _reaches_ip(
    index: MeshIndex, namespace: str, pods: Labels, ip: ipaddress.IPv4Address, outside: list[Backend]
) -> bool:
    """Whether `pods` of `namespace` may connect to `ip`: their egress allows it, and where it lands
    on in-cluster pods, their ingress admits the namespace."""
    if not allows(index, namespace, pods, Direction.EGRESS, lambda peer: peer.matches_ip(ip)):
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
