"""In-cluster pods behind a ServiceEntry: what a client could reach without the egress waypoint.

A ServiceEntry usually stands for something outside the cluster. When the manifests show that its
destination is in fact served by pods in the cluster (a stand-in database behind a LoadBalancer, a
Service the ServiceEntry points at), those pods can be dialled directly, and only their own
ingress NetworkPolicy stands between a client and them. The analysis links pods to a ServiceEntry
only on evidence the manifests carry, never on a naming or labelling convention of this project:

  address        a Service's shown address (`status.loadBalancer.ingress[].ip`, `spec.loadBalancerIP`,
                 `spec.externalIPs`, `spec.clusterIP`) is an IP the ServiceEntry names: in
                 `spec.addresses` (or a CIDR there), spelled by a host (`203.0.113.10.nip.io`), or an
                 endpoint's address; or its load balancer's hostname is one of the ServiceEntry's hosts
                 or endpoint addresses. Live objects (`kubectl get -o yaml`) carry this.
  service name   a host or endpoint address of the ServiceEntry is the Service's in-cluster name,
                 `<name>.<namespace>.svc` (with or without the cluster domain after it).
  unresolved     a LoadBalancer Service whose address the manifests do not show (rendered manifests,
  load balancer  before a cloud assigns one) with the ServiceEntry's name and one of its port numbers:
                 its address is unknown, and its name and port are the only link the manifests leave.
                 A LoadBalancer Service of another name is not linked: nothing says which ServiceEntry
                 it is behind. Analyse the live objects to link it by address.
  workloadSelector  the ServiceEntry's `spec.workloadSelector` selects pods in its namespace: they are
                 its endpoints.

The pods are known by what selects them (the Service's `selector`, the `workloadSelector` labels),
since the manifests need not contain them.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .manifests import SERVICE, SERVICE_ENTRY, Kind, MeshIndex, ObjectRef, Resource
from .mesh import service_entry_hosts, service_entry_ports
from .netpol import Labels

# These resolve `<ipv4>.nip.io` (also with names in front, `db.<ipv4>.nip.io`) to the IP itself.
_IP_ECHO_DOMAINS = ("nip.io", "sslip.io")
_LOAD_BALANCER = "LoadBalancer"


@dataclass(frozen=True)
class Backend:
    kind: Kind  # a Service, or the ServiceEntry itself when its workloadSelector picks the pods
    ref: ObjectRef
    pods: Labels
    evidence: str  # how the manifests link it to the ServiceEntry
    # The ServiceEntry's IPs it answers on; None when its address is unknown, so it may answer on any.
    addresses: frozenset[ipaddress.IPv4Address] | None

    @property
    def namespace(self) -> str:
        return self.ref.namespace

    def answers(self, ip: ipaddress.IPv4Address) -> bool:
        return self.addresses is None or ip in self.addresses

    def __str__(self) -> str:
        return f"{self.kind.kind} {self.ref}"


def host_ip(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host spells out, if it does."""
    labels = host.split(".")
    if ".".join(labels[-2:]) in _IP_ECHO_DOMAINS:
        labels = labels[-6:-2]
    return _ipv4(".".join(labels))


def backends(index: MeshIndex, service_entry: Resource) -> tuple[Backend, ...]:
    """Every Service and pod set the manifests link to the ServiceEntry, worked out once per index."""
    return index.derived(("backends", service_entry.ref), lambda: tuple(_find(index, service_entry)))


def _find(index: MeshIndex, service_entry: Resource) -> Iterator[Backend]:
    names = _named(service_entry)
    networks = [network for network in map(_network, service_entry.spec.get("addresses") or []) if network]
    named_ips = {ip for ip in map(_ipv4, names) if ip is not None}
    port_numbers = {port.number for port in service_entry_ports(service_entry)}
    for service, ips, hostnames in _candidates(index, service_entry, names, named_ips, bool(networks)):
        pods = Labels(service.spec.get("selector") or {})
        answering = frozenset(ip for ip in ips if ip in named_ips or any(ip in net for net in networks))
        in_cluster = f"{service.name}.{service.namespace}.svc"
        if answering:
            listed = ", ".join(map(str, sorted(answering)))
            yield Backend(SERVICE, service.ref, pods, f"its address {listed} is the ServiceEntry's", answering)
        elif hostnames & names:
            evidence = f"its load balancer hostname {min(hostnames & names)} is the ServiceEntry's"
            yield Backend(SERVICE, service.ref, pods, evidence, frozenset())
        elif any(name == in_cluster or name.startswith(f"{in_cluster}.") for name in names):
            yield Backend(SERVICE, service.ref, pods, f"the ServiceEntry names {in_cluster}", frozenset())
        elif (
            service.spec.get("type") == _LOAD_BALANCER
            and not ips
            and not hostnames
            and service.name == service_entry.name
            and port_numbers & {port.get("port") for port in service.spec.get("ports") or []}
        ):
            evidence = "a LoadBalancer Service of the ServiceEntry's name and port, whose address is not shown"
            yield Backend(SERVICE, service.ref, pods, evidence, None)
    selected = (service_entry.spec.get("workloadSelector") or {}).get("labels")
    if selected:
        evidence = "the pods its workloadSelector selects"
        yield Backend(SERVICE_ENTRY, service_entry.ref, Labels(selected), evidence, frozenset())


ShownService = tuple[Resource, frozenset[ipaddress.IPv4Address], frozenset[str]]


@dataclass(frozen=True)
class _ServiceIndex:
    """Every Service with the addresses it is shown at, and the keys a ServiceEntry can link it by."""

    shown: tuple[ShownService, ...]
    by_key: Mapping[str, frozenset[int]]  # an IP, hostname, in-cluster name or LoadBalancer name → positions


def _service_index(index: MeshIndex) -> _ServiceIndex:
    def build() -> _ServiceIndex:
        shown, by_key = [], defaultdict(set)
        for position, service in enumerate(index.all(SERVICE)):
            ips, hostnames = _shown_addresses(service)
            shown.append((service, frozenset(ips), frozenset(hostnames)))
            keys = {*map(str, ips), *hostnames, f"{service.name}.{service.namespace}.svc"}
            if service.spec.get("type") == _LOAD_BALANCER:
                keys.add(f"{_LOAD_BALANCER}/{service.name}")
            for key in keys:
                by_key[key].add(position)
        return _ServiceIndex(tuple(shown), {key: frozenset(found) for key, found in by_key.items()})

    return index.derived("services by address", build)


def _candidates(
    index: MeshIndex, service_entry: Resource, names: set[str], named_ips: set[ipaddress.IPv4Address], ranges: bool
) -> Iterator[ShownService]:
    """The Services that may be linked to the ServiceEntry, in index order; every one with a shown
    address when the ServiceEntry pins a range."""
    services = _service_index(index)
    # An in-cluster name is `<service>.<namespace>.svc`, possibly with the cluster domain after it.
    keys = {*names, *map(str, named_ips), f"{_LOAD_BALANCER}/{service_entry.name}"}
    keys |= {".".join(name.split(".")[:3]) for name in names if name.split(".")[2:3] == ["svc"]}
    positions = set().union(*(services.by_key.get(key, frozenset()) for key in keys))
    if ranges:
        positions |= {position for position, (_, ips, _) in enumerate(services.shown) if ips}
    return (services.shown[position] for position in sorted(positions))


def _named(service_entry: Resource) -> set[str]:
    """Every host, IP and endpoint address the ServiceEntry names, IPs spelled by hosts included."""
    endpoints: list[Mapping[str, Any]] = service_entry.spec.get("endpoints") or []
    names = {*service_entry_hosts(service_entry), *(str(e.get("address", "")) for e in endpoints)}
    return names | {str(ip) for ip in map(host_ip, names) if ip is not None}


def _shown_addresses(service: Resource) -> tuple[set[ipaddress.IPv4Address], set[str]]:
    """The IPs and hostnames the manifests show a Service reachable at."""
    ingress: list[Mapping[str, Any]] = (service.status.get("loadBalancer") or {}).get("ingress") or []
    texts = [entry.get("ip", "") for entry in ingress]
    texts += [service.spec.get("loadBalancerIP", ""), service.spec.get("clusterIP", "")]
    texts += service.spec.get("externalIPs") or []
    ips = {ip for ip in map(_ipv4, texts) if ip is not None}
    return ips, {entry["hostname"] for entry in ingress if entry.get("hostname")}


def _ipv4(text: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None


def _network(text: str) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        return None
