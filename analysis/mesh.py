"""Istio ambient basics over a MeshIndex: which namespaces are enrolled (or run sidecars), what is a
waypoint, and a ServiceEntry's ports and hosts. Which waypoint serves a ServiceEntry is `binding`'s;
which policies that waypoint applies, `attachment`'s."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from .manifests import GATEWAY, MeshIndex, Resource

DATAPLANE_MODE = "istio.io/dataplane-mode"
SIDECAR_INJECTION = "istio-injection"
REVISION = "istio.io/rev"
USE_WAYPOINT = "istio.io/use-waypoint"
USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace"
WAYPOINT_CLASS = "istio-waypoint"
# The waypoint parses these as HTTP; every other protocol it proxies as opaque TCP.
_HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC", "GRPC-WEB"}


class Enrollment(Enum):
    # The values complete the sentence "namespace X ...".
    AMBIENT = "is ambient-enrolled"
    SIDECAR = "runs sidecars (labelled for injection)"
    NOT_ENROLLED = "is not ambient-enrolled"
    UNKNOWN = "has no Namespace manifest"


def enrollment(index: MeshIndex, namespace: str) -> Enrollment:
    """Injection wins over the ambient label: a pod that got a sidecar is never captured by ztunnel
    (`cni/pkg/util/enablement_selector.go`, CompiledEnablementSelectors.Matches: "Ztunnel and sidecar
    for a single pod is currently not supported; opt out"), so a namespace labelled both ways while
    it migrates runs sidecars."""
    manifest = index.namespace(namespace)
    if manifest is None:
        return Enrollment.UNKNOWN
    if injects_sidecars(manifest.labels):
        return Enrollment.SIDECAR
    return Enrollment.AMBIENT if manifest.labels.get(DATAPLANE_MODE) == "ambient" else Enrollment.NOT_ENROLLED


def injects_sidecars(namespace_labels: Mapping[str, str]) -> bool:
    """Whether the injection webhook selects the namespace's pods: `istio-injection: enabled`, or an
    `istio.io/rev` revision label without `istio-injection` (the `namespace.` and `rev.namespace.`
    webhooks of `manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml`)."""
    injection = namespace_labels.get(SIDECAR_INJECTION)
    return injection == "enabled" or (injection is None and bool(namespace_labels.get(REVISION)))


def is_http_protocol(protocol: str) -> bool:
    return protocol.upper() in _HTTP_PROTOCOLS


def is_waypoint(gateway: Resource) -> bool:
    return gateway.kind == GATEWAY and gateway.spec.get("gatewayClassName") == WAYPOINT_CLASS


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
