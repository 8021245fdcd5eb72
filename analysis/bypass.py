"""Ways around the waypoint: connections that reach a ServiceEntry's database without the waypoint
ever seeing them, because ztunnel sends only traffic addressed to a ServiceEntry's hosts or
`spec.addresses` to the waypoint and passes everything else through.

Two routes stay open unless something closes them:
  raw IP      dialling the IP a host names (`203.0.113.10.nip.io`, or the IP itself) instead of the
              host; closed by listing the IP in `spec.addresses`, or by an egress NetworkPolicy in
              the client namespace that denies it;
  in-cluster  dialling a stand-in database's Service or pods (`postgres-1.db.svc.cluster.local`);
              closed by an ingress NetworkPolicy that admits only the waypoint's pods.

A stand-in is found by convention, the one the project renders: a Service labelled
`app.kubernetes.io/component: database`, named like the ServiceEntry, in a namespace outside the
mesh (a database inside the mesh is EGW0301's to report). A raw-IP connection to a stand-in lands
on its pods, so their ingress policy closes that route too.

Only ambient clients and ServiceEntries a waypoint enforces have routes *around* the waypoint: for
the rest, nothing enforces in the first place and the verdict is OPEN already.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .binding import waypoint_binding
from .istio import Istio
from .manifests import SERVICE, MeshIndex, ObjectRef, Resource
from .mesh import Enrollment, enrollment, service_entry_hosts
from .netpol import CLIENT_PODS, Direction, Labels, allows, namespace_labels

# The stand-in databases carry this label.
COMPONENT_LABEL = "app.kubernetes.io/component"
DATABASE_COMPONENT = "database"
# These resolve `<ipv4>.nip.io` (also with names in front, `db.<ipv4>.nip.io`) to the IP itself.
_IP_ECHO_DOMAINS = ("nip.io", "sslip.io")

RAW_IP = "raw IP"
IN_CLUSTER = "in-cluster"


def is_database(resource: Resource) -> bool:
    return resource.labels.get(COMPONENT_LABEL) == DATABASE_COMPONENT


@dataclass(frozen=True, order=True)
class Bypass:
    route: str  # RAW_IP or IN_CLUSTER
    resource: ObjectRef  # what to fix: the ServiceEntry to pin the IP on, or the stand-in's Service
    ip: str = ""  # the address dialled, on the RAW_IP route

    def __str__(self) -> str:
        return f"{RAW_IP} {self.ip}" if self.route == RAW_IP else f"{IN_CLUSTER} {self.resource}"


def host_ip(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host spells out, if it does."""
    labels = host.split(".")
    if ".".join(labels[-2:]) in _IP_ECHO_DOMAINS:
        labels = labels[-6:-2]
    try:
        return ipaddress.IPv4Address(".".join(labels))
    except ValueError:
        return None


def unpinned_ips(service_entry: Resource) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPs the hosts spell out that `spec.addresses` (addresses or CIDRs) does not cover."""
    pinned = [ipaddress.ip_network(address, strict=False) for address in service_entry.spec.get("addresses") or []]
    ips = dict.fromkeys(filter(None, map(host_ip, service_entry_hosts(service_entry))))
    return tuple(ip for ip in ips if not any(ip in network for network in pinned))


def unpinnable_hosts(index: MeshIndex, service_entry: Resource, istio: Istio) -> tuple[str, ...]:
    """DNS-named hosts of an enforced ServiceEntry whose IPs nothing in the manifests accounts for:
    no `spec.addresses`, and no stand-in whose ingress policy would judge connections to them."""
    if service_entry.spec.get("addresses") or database_services(index, service_entry):
        return ()
    if not waypoint_binding(index, service_entry, istio).enforced:
        return ()
    return tuple(host for host in service_entry_hosts(service_entry) if host_ip(host) is None)


def database_services(index: MeshIndex, service_entry: Resource) -> tuple[Resource, ...]:
    """The stand-ins behind a ServiceEntry, by the naming convention above."""
    return tuple(
        service
        for service in index.named(SERVICE, service_entry.name)
        if is_database(service) and enrollment(index, service.namespace) is not Enrollment.AMBIENT
    )


def bypasses(index: MeshIndex, client_namespace: str, service_entry: Resource, istio: Istio) -> tuple[Bypass, ...]:
    """The routes by which pods in `client_namespace` reach the ServiceEntry's database around its waypoint."""
    if enrollment(index, client_namespace) is not Enrollment.AMBIENT:
        return ()
    if not waypoint_binding(index, service_entry, istio).enforced:
        return ()
    stand_ins = database_services(index, service_entry)
    admitting = [service for service in stand_ins if _pods_admit(index, service, client_namespace)]
    routes = [
        Bypass(RAW_IP, service_entry.ref, str(ip))
        for ip in unpinned_ips(service_entry)
        # The judgement is on the IP as dialled; whether a CNI applies egress policy before or after a
        # LoadBalancer IP is translated to a pod IP varies.
        if _egress_allows_ip(index, client_namespace, ip) and (admitting or not stand_ins)
    ]
    routes += [
        Bypass(IN_CLUSTER, service.ref)
        for service in admitting
        if _egress_allows_pods(index, client_namespace, service)
    ]
    return tuple(routes)


def _pods_of(service: Resource) -> Labels:
    return Labels(service.spec.get("selector") or {})


def _pods_admit(index: MeshIndex, service: Resource, client_namespace: str) -> bool:
    client_labels = namespace_labels(index, client_namespace)
    return allows(
        index,
        service.namespace,
        _pods_of(service),
        Direction.INGRESS,
        lambda peer: peer.may_match_pods(service.namespace, client_namespace, client_labels, CLIENT_PODS),
    )


def _egress_allows_ip(index: MeshIndex, client_namespace: str, ip: ipaddress.IPv4Address) -> bool:
    return allows(index, client_namespace, CLIENT_PODS, Direction.EGRESS, lambda peer: peer.matches_ip(ip))


def _egress_allows_pods(index: MeshIndex, client_namespace: str, service: Resource) -> bool:
    database_labels = namespace_labels(index, service.namespace)
    return allows(
        index,
        client_namespace,
        CLIENT_PODS,
        Direction.EGRESS,
        lambda peer: peer.may_match_pods(client_namespace, service.namespace, database_labels, _pods_of(service)),
    )
