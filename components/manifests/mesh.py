"""Istio and Gateway API objects of the egress path: the waypoint, its access logs, ServiceEntries
bound to it, TLS origination and request headers at the waypoint."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..values import ServicePort, Waypoint
from .core import metadata

USE_WAYPOINT = "istio.io/use-waypoint"
USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace"
TLS_PORT = 443
SERVICE_ENTRY_REF = {"group": "networking.istio.io", "kind": "ServiceEntry"}
GATEWAY_REF = {"group": "gateway.networking.k8s.io", "kind": "Gateway"}

WAYPOINT_READY_TIMEOUT_SECONDS = 300
# pulumi-kubernetes waits for a custom resource only when told what to wait for; a JSON list means
# every condition at once (provider/pkg/metadata/overrides.go, ReadyCondition). istiod binds a
# ServiceEntry to the waypoint only once the Gateway reports an address
# (pilot/pkg/serviceregistry/ambient/waypoints.go), so `pulumi up` waits for Programmed and the
# address before it creates any ServiceEntry: until then ztunnel sends the traffic straight out.
_WAIT_FOR_PROGRAMMED = {
    "pulumi.com/waitFor": json.dumps(["condition=Programmed", "jsonpath={.status.addresses[0].value}"]),
    "pulumi.com/timeoutSeconds": str(WAYPOINT_READY_TIMEOUT_SECONDS),
}


def waypoint_gateway(waypoint: Waypoint) -> dict[str, Any]:
    """The waypoint, admitting ServiceEntries from `waypoint.route_namespaces`: its own namespace
    only unless told otherwise, so a ServiceEntry in a tenant's namespace cannot bind to it."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": metadata(waypoint.name, waypoint.namespace, annotations=_WAIT_FOR_PROGRAMMED),
        "spec": {
            "gatewayClassName": "istio-waypoint",
            "listeners": [
                {"name": "mesh", "port": 15008, "protocol": "HBONE",
                 "allowedRoutes": {"namespaces": {"from": str(waypoint.route_namespaces)}}}
            ],
        },
    }


def waypoint_access_logging(waypoint: Waypoint) -> dict[str, Any]:
    """Envoy access logs on the waypoint: denied connections show `rbac_access_denied_matched_policy`."""
    return {
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": metadata(f"{waypoint.name}-access-logs", waypoint.namespace),
        "spec": {
            "targetRefs": [{**GATEWAY_REF, "name": waypoint.name}],
            "accessLogging": [{"providers": [{"name": "envoy"}]}],
        },
    }


def service_entry(
    name: str,
    namespace_name: str,
    *,
    host: Any,
    addresses: Any,
    resolution: Any = "DNS",
    ports: Sequence[ServicePort],
    waypoint: Waypoint,
    tls_origination: bool = False,
) -> dict[str, Any]:
    """An external host bound to the waypoint. `host`, `addresses` (None for no pin) and
    `resolution` may be deploy-time outputs; the name, the binding labels and the ports never are."""
    labels = {USE_WAYPOINT: waypoint.name}
    if waypoint.namespace != namespace_name:
        labels[USE_WAYPOINT_NAMESPACE] = waypoint.namespace
    spec: dict[str, Any] = {
        "hosts": [host],
        "location": "MESH_EXTERNAL",
        "resolution": resolution,
        "ports": [
            # With TLS origination clients speak plain HTTP to the port, and the waypoint dials 443.
            {"number": port.number, "name": port.port_name, "protocol": str(port.protocol),
             **({"targetPort": TLS_PORT} if tls_origination else {})}
            for port in ports
        ],
    }
    if addresses is not None:
        spec["addresses"] = addresses
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": metadata(name, namespace_name, labels),
        "spec": spec,
    }


def tls_origination_rule(name: str, namespace_name: str, host: Any, *, credential_name: str | None = None) -> dict[str, Any]:
    """The waypoint wraps the plain HTTP it receives in TLS, and checks the server's certificate names `host`.

    Setting `sni` alone switches off Istio's automatic name check, so any publicly trusted
    certificate would do (pilot/pkg/networking/core/cluster_tls.go); `subjectAltNames` puts the
    check back. The CA is the system's, or the `credential_name` Secret's `ca.crt` in the
    waypoint's namespace (a name ending in `-cacert` needs no extra RBAC for the waypoint).
    """
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": metadata(f"{name}-tls-origination", namespace_name),
        "spec": {"host": host, "trafficPolicy": {"tls": originated_tls(host, credential_name)}},
    }


def originated_tls(host: Any, credential_name: str | None) -> dict[str, Any]:
    """TLS to the host that checks the certificate names it, against the system's CAs or the
    `credential_name` Secret's."""
    tls: dict[str, Any] = {"mode": "SIMPLE", "sni": host, "subjectAltNames": [host]}
    if credential_name:
        tls["credentialName"] = credential_name
    return tls


def request_header_route(name: str, namespace_name: str, *, host: Any, port: int,
                         headers: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Headers added at the egress waypoint: an HTTPRoute bound to the ServiceEntry, routing back to its host.

    Gateway API routes are how ambient waypoints take traffic rules; VirtualService there is alpha.
    """
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata(f"{name}-request-headers", namespace_name),
        "spec": {
            "parentRefs": [{**SERVICE_ENTRY_REF, "name": name, "port": port}],
            "rules": [{
                "filters": [{
                    "type": "RequestHeaderModifier",
                    "requestHeaderModifier": {"add": [{"name": key, "value": value} for key, value in headers]},
                }],
                "backendRefs": [{"group": "networking.istio.io", "kind": "Hostname", "name": host, "port": port}],
            }],
        },
    }
