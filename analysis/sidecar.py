"""Sidecar mode: what the sidecars of a namespace see, what they do with the rest, and the pods
that leave them. Where a namespace's traffic goes from there is `egress_gateway`'s; the verdicts
are `sidecar_access`'s.

Visibility, as istiod builds a sidecar's configuration (`pilot/pkg/model/sidecar.go`,
`push_context.go`):
  exportTo   a ServiceEntry, VirtualService or DestinationRule is seen only in the namespaces its
             `exportTo` names: `*` every one, `.` its own, `~` none, or names; without `exportTo`,
             the mesh's `defaultServiceExportTo` (and its VirtualService and DestinationRule
             siblings), which Istio sets to `*` (`pkg/config/mesh/mesh.go`). The manifests do not
             show the mesh config, so the analysis takes Istio's default. A Kubernetes Service
             says it with the annotation `networking.istio.io/exportTo`.
  Sidecar    a `Sidecar` resource's `egress[].hosts`, `namespace/dnsName`, narrow what a sidecar
             imports of what is exported to it: the namespace `*` any, `.` the sidecar's own, `~`
             none; the dnsName `*` every host, `*.suffix` a wildcard, else one host; an egress
             listener with a `port` imports its hosts on that port only; without `egress`, `*/*`
             (`initSidecarScopeInternalIndexes`). A namespace's Sidecar without `workloadSelector`
             applies to all its pods; without one, the root namespace's applies; without that,
             every exported host is imported (API `networking/v1alpha3/sidecar.proto`, NOTE 1 and
             2). Only one selector-less Sidecar per namespace is defined behaviour, and Sidecars with
             a `workloadSelector` take some pods out of it: the analysis judges a namespace by
             every Sidecar that may apply to one of its pods, so a host counts as visible when one
             of them imports it. Istio 1.31 reads a namespace `~name` as an exclusion (istio/istio
             #60139); the analysis reads every `~` entry as importing nothing, as earlier releases
             do, which may count a host visible that 1.31 hides.
  outbound   a connection to a host the sidecar does not import goes out under the Sidecar's
             `outboundTrafficPolicy.mode`, else the mesh's (see `istio.OutboundTrafficPolicy`):
             REGISTRY_ONLY refuses it, ALLOW_ANY passes it to the address dialled.

Capture: the injection webhook skips a pod labelled (or, the older way, annotated)
`sidecar.istio.io/inject: "false"`, the label winning over the annotation, and every host-network
pod (`pkg/kube/inject/inject.go` injectRequired); such a pod goes straight out, unless its
namespace is also ambient-enrolled, where ztunnel captures it (a migration's halfway state; its
row is still judged as the namespace's sidecars). An injected pod's annotations
`traffic.sidecar.istio.io/excludeOutboundPorts`, `excludeOutboundIPRanges` and
`includeOutboundIPRanges` leave connections to those ports or addresses uncaptured (istio-init's
iptables rules, `tools/istio-iptables`). Only a NetworkPolicy holds what leaves capture.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .egress import LISTED_ADDRESSES
from .istio import Istio, OutboundTrafficPolicy
from .manifests import GATEWAY, NAMESPACE, SERVICE, Kind, MeshIndex, ObjectRef, Resource
from .mesh import DATAPLANE_MODE, Enrollment, enrollment, is_waypoint
from .netpol import IPNetwork
from .workloads import SIDECAR_INJECT, Workload, workloads

SIDECAR = Kind("networking.istio.io", "Sidecar")
# Kubernetes Services say exportTo with this annotation (networking/v1alpha3/service_entry.proto).
SERVICE_EXPORT_TO = "networking.istio.io/exportTo"
EXCLUDE_OUTBOUND_PORTS = "traffic.sidecar.istio.io/excludeOutboundPorts"
EXCLUDE_OUTBOUND_IP_RANGES = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
INCLUDE_OUTBOUND_IP_RANGES = "traffic.sidecar.istio.io/includeOutboundIPRanges"
_CAPTURE_ANNOTATIONS = (EXCLUDE_OUTBOUND_PORTS, EXCLUDE_OUTBOUND_IP_RANGES, INCLUDE_OUTBOUND_IP_RANGES)
_EVERY_ADDRESS = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
_ANY_NAMESPACE, _OWN_NAMESPACE, _NO_NAMESPACE = "*", ".", "~"
_MESH_POLICY = "the mesh's outboundTrafficPolicy"


def runs_sidecars(index: MeshIndex, namespace: str) -> bool:
    return enrollment(index, namespace) is Enrollment.SIDECAR


def sidecar_only(index: MeshIndex) -> bool:
    """Whether the manifests show sidecar namespaces and nothing of ambient: no ambient namespace and
    no waypoint. The waypoint's findings then have nothing to say."""

    def build() -> bool:
        namespaces = [enrollment(index, namespace.name) for namespace in index.all(NAMESPACE)]
        waypoints = any(is_waypoint(gateway) for gateway in index.all(GATEWAY))
        return Enrollment.SIDECAR in namespaces and Enrollment.AMBIENT not in namespaces and not waypoints

    return index.derived("sidecar only", build)


def exported_to(export_to: Sequence[Any] | None, owner_namespace: str, client_namespace: str) -> bool:
    """Whether an object of `owner_namespace` with that `exportTo` is seen in `client_namespace`;
    none given is Istio's default, `*`."""
    values = [str(value) for value in export_to or [_ANY_NAMESPACE]]
    return any(
        value in (_ANY_NAMESPACE, client_namespace) or (value == _OWN_NAMESPACE and owner_namespace == client_namespace)
        for value in values
    )


def service_exported_to(service: Resource | None, client_namespace: str) -> bool:
    """`exported_to` for a Kubernetes Service, which says it with an annotation; one the manifests do
    not show is taken as exported everywhere."""
    if service is None:
        return True
    listed = service.annotations.get(SERVICE_EXPORT_TO)
    values = [value.strip() for value in listed.split(",")] if listed else None
    return exported_to(values, service.namespace, client_namespace)


def host_within(host: str, pattern: str) -> bool:
    """Istio's `host.Name.SubsetOf` (`pkg/config/host/name.go`): a pattern with a leading `*` holds
    the hosts (wildcards included) ending in what follows it, so `*` holds every host; any other
    pattern only itself."""
    if host == pattern:
        return True
    if pattern.startswith("*"):
        return (host[1:] if host.startswith("*") else host).endswith(pattern[1:])
    return False


@dataclass(frozen=True)
class _Import:
    namespace: str  # `*`, or a namespace name (`.` resolved); `~` imports nothing
    host: str
    port: int | None  # the egress listener's port, if it has one


@dataclass(frozen=True)
class SidecarScope:
    """One `Sidecar` resource as it applies to a namespace's sidecars; `resource` None is Istio's
    default, which imports every host exported to the namespace."""

    resource: ObjectRef | None
    imports: tuple[_Import, ...]
    outbound: OutboundTrafficPolicy
    outbound_set_by: str  # the Sidecar that sets it, or the mesh

    def imports_host(self, host: str, host_namespace: str, port: int) -> bool:
        return any(
            entry.namespace in (_ANY_NAMESPACE, host_namespace)
            and (entry.port is None or entry.port == port)
            and host_within(host, entry.host)
            for entry in self.imports
        )

    def __str__(self) -> str:
        return f"Sidecar {self.resource}" if self.resource else "no Sidecar resource (every exported host)"


def sidecar_scopes(index: MeshIndex, namespace: str, istio: Istio) -> tuple[SidecarScope, ...]:
    """The Sidecar resources that may apply to a pod of `namespace`: its own, those with a
    workloadSelector first; else the root namespace's; else Istio's default. Worked out once."""

    def build() -> tuple[SidecarScope, ...]:
        own = index.in_namespace(SIDECAR, namespace)
        selecting = [sidecar for sidecar in own if sidecar.spec.get("workloadSelector")]
        namespace_wide = [sidecar for sidecar in own if not sidecar.spec.get("workloadSelector")]
        if not namespace_wide:
            root = index.in_namespace(SIDECAR, istio.root_namespace)
            namespace_wide = [sidecar for sidecar in root if not sidecar.spec.get("workloadSelector")][:1]
        if not namespace_wide:
            default = SidecarScope(None, (_Import(_ANY_NAMESPACE, "*", None),), istio.outbound_traffic_policy, _MESH_POLICY)
            return (*(_scope(sidecar, namespace, istio) for sidecar in selecting), default)
        return tuple(_scope(sidecar, namespace, istio) for sidecar in (*selecting, *namespace_wide))

    return index.derived(("sidecar scopes", namespace, istio), build)


def has_sidecar_resource(index: MeshIndex, namespace: str, istio: Istio) -> bool:
    """Whether a Sidecar resource, the namespace's or the root namespace's, narrows what its sidecars see."""
    return all(scope.resource is not None for scope in sidecar_scopes(index, namespace, istio))


def _scope(sidecar: Resource, namespace: str, istio: Istio) -> SidecarScope:
    listeners: list[Mapping[str, Any]] = sidecar.spec.get("egress") or [{"hosts": ["*/*"]}]
    imports = []
    for listener in listeners:
        port = (listener.get("port") or {}).get("number")
        for written in listener.get("hosts") or []:
            host_namespace, slash, host = str(written).partition("/")
            if not slash or host_namespace.startswith(_NO_NAMESPACE):
                continue  # istiod skips a host without a namespace; `~` imports nothing
            resolved = namespace if host_namespace == _OWN_NAMESPACE else host_namespace
            imports.append(_Import(resolved, host, int(port) if port else None))
    mode = (sidecar.spec.get("outboundTrafficPolicy") or {}).get("mode")
    if mode in tuple(OutboundTrafficPolicy):
        return SidecarScope(sidecar.ref, tuple(imports), OutboundTrafficPolicy(mode), f"Sidecar {sidecar.ref}")
    return SidecarScope(sidecar.ref, tuple(imports), istio.outbound_traffic_policy, _MESH_POLICY)


@dataclass(frozen=True)
class Visibility:
    """What the sidecars of a namespace see of one host on one port, and why."""

    visible: bool
    reason: str
    outbound: OutboundTrafficPolicy  # what happens to the host when it is not visible
    outbound_set_by: str = ""


def visibility(
    index: MeshIndex, namespace: str, host: str, owner: ObjectRef, export_to: Sequence[Any] | None, port: int, istio: Istio
) -> Visibility:
    """Whether the sidecars of `namespace` see `host` on `port`, declared by an object of `owner`'s
    namespace with `export_to` (a ServiceEntry's `exportTo`)."""
    scopes = sidecar_scopes(index, namespace, istio)
    if not exported_to(export_to, owner.namespace, namespace):
        listed = ", ".join(map(str, export_to or ()))
        return _hidden(scopes, f"{owner} is not exported to namespace {namespace} (exportTo: {listed})")
    importing = next((scope for scope in scopes if scope.imports_host(host, owner.namespace, port)), None)
    if importing is None:
        names = ", ".join(str(scope.resource) for scope in scopes)
        return _hidden(scopes, f"Sidecar {names} does not import {owner.namespace}/{host}")
    how = f"imported by {importing}" if importing.resource else f"no Sidecar resource narrows namespace {namespace}"
    return Visibility(True, f"{owner} is exported to namespace {namespace} and {how}", importing.outbound)


def service_visible(index: MeshIndex, namespace: str, service: ObjectRef, port: int, istio: Istio) -> bool:
    """Whether the sidecars of `namespace` see the Kubernetes Service `service` on `port`."""
    host = f"{service.name}.{service.namespace}.svc.cluster.local"
    if not service_exported_to(index.get(SERVICE, service), namespace):
        return False
    return any(scope.imports_host(host, service.namespace, port) for scope in sidecar_scopes(index, namespace, istio))


def _hidden(scopes: Sequence[SidecarScope], why: str) -> Visibility:
    """A host the sidecars do not see goes out under the most open outbound policy among the scopes."""
    passing = next((scope for scope in scopes if scope.outbound is OutboundTrafficPolicy.ALLOW_ANY), scopes[0])
    return Visibility(False, why, passing.outbound, passing.outbound_set_by)


# --- pods that leave the sidecar --------------------------------------------------------------------


@dataclass(frozen=True)
class Escape:
    """A workload of a sidecar namespace some of whose connections no sidecar sees."""

    workload: Workload
    written: str  # what says so, as written
    every_destination: bool = False
    excluded_ports: frozenset[int] = frozenset()
    excluded_ranges: tuple[IPNetwork, ...] = ()
    included_ranges: tuple[IPNetwork, ...] | None = None  # None: every address is captured

    def covers(self, named_ips: Iterable[ipaddress.IPv4Address], dns_named: bool, port: int) -> bool:
        """Whether a connection to a destination at `named_ips` (and, `dns_named`, at addresses a DNS
        name resolves to) on `port` leaves the sidecar. A DNS name's addresses are unknown, so a range
        broad enough to hold an undeclared destination counts, as in `egress`."""
        if self.every_destination or port in self.excluded_ports:
            return True
        ips = list(named_ips)
        if any(ip in network for ip in ips for network in self.excluded_ranges):
            return True
        if self.included_ranges is not None and any(not any(ip in n for n in self.included_ranges) for ip in ips):
            return True
        if not dns_named:
            return False
        broad = any(network.num_addresses > LISTED_ADDRESSES for network in self.excluded_ranges)
        return broad or (self.included_ranges is not None and self.included_ranges != _EVERY_ADDRESS)


def escapes(index: MeshIndex, namespace: str) -> tuple[Escape, ...]:
    """The workloads of a sidecar namespace that leave their sidecar for some or all connections."""

    def build() -> tuple[Escape, ...]:
        if not runs_sidecars(index, namespace):
            return ()
        manifest = index.namespace(namespace)
        also_ambient = manifest is not None and manifest.labels.get(DATAPLANE_MODE) == "ambient"
        return tuple(filter(None, (_escape(workload, also_ambient) for workload in workloads(index, namespace))))

    return index.derived(("sidecar escapes", namespace), build)


def _escape(workload: Workload, also_ambient: bool) -> Escape | None:
    if workload.host_network:
        return Escape(workload, "hostNetwork: true", every_destination=True)
    inject = workload.labels.get(SIDECAR_INJECT, workload.annotations.get(SIDECAR_INJECT))
    if inject == "false":
        # Without a sidecar, a pod of a namespace also labelled ambient is ztunnel's.
        return None if also_ambient else Escape(workload, f'{SIDECAR_INJECT}: "false"', every_destination=True)
    annotations = workload.annotations
    included_text = annotations.get(INCLUDE_OUTBOUND_IP_RANGES, "*")
    ports = _ports(annotations.get(EXCLUDE_OUTBOUND_PORTS, ""))
    excluded = _ranges(annotations.get(EXCLUDE_OUTBOUND_IP_RANGES, ""))
    included = _EVERY_ADDRESS if included_text.strip() == "*" else _ranges(included_text)
    if ports is None or excluded is None or included is None:
        return None  # the injection webhook refuses the pod (`pkg/kube/inject/validate.go`): it never runs
    if not ports and not excluded and included == _EVERY_ADDRESS:
        return None
    written = ", ".join(f"{name}: {annotations[name]!r}" for name in _CAPTURE_ANNOTATIONS if name in annotations)
    return Escape(workload, written, excluded_ports=ports, excluded_ranges=excluded,
                  included_ranges=None if included == _EVERY_ADDRESS else included)


def _ports(text: str) -> frozenset[int] | None:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    return frozenset(map(int, parts)) if all(part.isdigit() for part in parts) else None


def _ranges(text: str) -> tuple[IPNetwork, ...] | None:
    """A comma-separated CIDR list as istio-iptables reads it; None when a part is no CIDR."""
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())
    except ValueError:
        return None
