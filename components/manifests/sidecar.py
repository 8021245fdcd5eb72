"""Sidecar mode: the same grants on a mesh of Envoy sidecars, through an Istio egress gateway.

Each target gets seed 001's objects: a ServiceEntry for the host, a `networking.istio.io` Gateway
on the egress gateway, a DestinationRule that keeps the hop from sidecar to gateway in mutual TLS
(so the gateway knows the client's identity, and tells targets apart by the SNI), and a
VirtualService that routes the host from the sidecars (`mesh`) to the gateway and from the gateway
out. Grants are ALLOW policies on the gateway's workload, by source namespace or principal and the
connection's SNI. Visibility follows seed 003: the ServiceEntry is exported only to the gateway's
and the granted namespaces, and each client namespace's `Sidecar` resource lists only what it was
granted, under `REGISTRY_ONLY`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..values import EgressGatewayRef, Protocol, ServicePort, principal
from .core import metadata
from .mesh import TLS_PORT, originated_tls

INJECTION = {"istio-injection": "enabled"}
SNI = "connection.sni"
SIDECAR_NAME = "egress-visibility"


def injection_labels(name: str) -> dict[str, Any]:
    """What the stack sets on a namespace it does not own in sidecar mode: the injection label."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(INJECTION)}}


def injected_namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata(name, labels=INJECTION)}


def export_to(namespace_name: str, gateway: EgressGatewayRef, visible_to: Iterable[str]) -> list[str]:
    """The namespaces that see a target's configuration: its own, the gateway's, the granted ones.
    Exported everywhere (the default), every namespace's sidecar could route to it."""
    return sorted({".", *(ns for ns in (gateway.namespace, *visible_to) if ns != namespace_name)})


def gateway_service_entry(name: str, namespace_name: str, *, host: Any, addresses: Any, port: ServicePort,
                          exported_to: Sequence[str]) -> dict[str, Any]:
    """The external host, for the sidecars that may route it and for the gateway. Resolved by DNS
    at the gateway: a passthrough (`NONE`) entry would send the gateway's traffic back to itself."""
    spec: dict[str, Any] = {
        "hosts": [host], "location": "MESH_EXTERNAL", "resolution": "DNS", "exportTo": list(exported_to),
        "ports": [{"number": port.number, "name": port.port_name, "protocol": str(port.protocol)}],
    }
    if addresses is not None:
        spec["addresses"] = addresses
    return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": metadata(name, namespace_name),
            "spec": spec}


def _server_protocol(port: ServicePort) -> str:
    # HTTP is routed and authorised by request at the gateway; anything else by connection.
    return "HTTPS" if port.is_http else "TLS"


def egress_gateway_server(name: str, namespace_name: str, *, host: Any, port: ServicePort,
                          gateway: EgressGatewayRef) -> dict[str, Any]:
    """The gateway's server for one target: mutual TLS from the sidecars, matched by SNI."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": metadata(f"egress-{name}", namespace_name),
        "spec": {
            "selector": dict(gateway.selector),
            "servers": [{
                "port": {"number": gateway.port, "name": f"{_server_protocol(port).lower()}-{name}",
                         "protocol": _server_protocol(port)},
                "hosts": [host],
                "tls": {"mode": "ISTIO_MUTUAL"},
            }],
        },
    }


def egress_gateway_subset(name: str, *, host: Any, gateway: EgressGatewayRef) -> dict[str, Any]:
    """The sidecar's hop to the gateway in mutual TLS, with the target's host as SNI. A sidecar
    looks for the gateway host's DestinationRule only in its own namespace, the gateway's and the
    root namespace (`pilot/pkg/model/push_context.go` destinationRule), so it lives beside the
    gateway; and since a sidecar uses only one of a namespace's rules for a host unless their
    exportTo is the same (`mergeDestinationRule`), every target's is exported alike, everywhere:
    a subset routes nothing by itself, the VirtualService exported to the grantees does."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": metadata(f"{name}-via-egress-gateway", gateway.namespace),
        "spec": {
            "host": gateway.host,
            "exportTo": ["*"],
            "subsets": [{"name": name, "trafficPolicy": {"portLevelSettings": [{
                "port": {"number": gateway.port}, "tls": {"mode": "ISTIO_MUTUAL", "sni": host}}]}}],
        },
    }


def egress_route(name: str, namespace_name: str, *, host: Any, port: ServicePort, gateway: EgressGatewayRef,
                 exported_to: Sequence[str], tls_origination: bool = False,
                 request_headers: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """Sidecars send the host to the gateway; the gateway sends it to the host."""
    server = f"{namespace_name}/egress-{name}"
    to_gateway = {"destination": {"host": gateway.host, "subset": name, "port": {"number": gateway.port}}}
    out = {"destination": {"host": host, "port": {"number": TLS_PORT if tls_origination else port.number}}}
    from_mesh = {"gateways": ["mesh"], "port": port.number}
    at_gateway = {"gateways": [server], "port": gateway.port}
    spec: dict[str, Any] = {"hosts": [host], "gateways": [server, "mesh"], "exportTo": list(exported_to)}
    if port.is_http:
        outbound: dict[str, Any] = {"match": [at_gateway], "route": [out]}
        if request_headers:
            outbound["headers"] = {"request": {"add": dict(request_headers)}}
        spec["http"] = [{"match": [from_mesh], "route": [to_gateway]}, outbound]
    elif port.protocol in (Protocol.TLS, Protocol.HTTPS):
        spec["tls"] = [{"match": [{**from_mesh, "sniHosts": [host]}], "route": [to_gateway]}]
        spec["tcp"] = [{"match": [at_gateway], "route": [out]}]
    else:
        spec["tcp"] = [{"match": [from_mesh], "route": [to_gateway]}, {"match": [at_gateway], "route": [out]}]
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": metadata(f"{name}-through-egress-gateway", namespace_name), "spec": spec}


def gateway_tls_origination(name: str, namespace_name: str, *, host: Any, gateway: EgressGatewayRef,
                            credential_name: str | None = None) -> dict[str, Any]:
    """The gateway opens TLS to the host on 443 and checks its certificate names the host."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": metadata(f"{name}-tls-origination", namespace_name),
        "spec": {"host": host, "exportTo": sorted({".", *({gateway.namespace} - {namespace_name})}),
                 "trafficPolicy": {"portLevelSettings": [{"port": {"number": TLS_PORT},
                                                          "tls": originated_tls(host, credential_name)}]}},
    }


def gateway_allow_nothing(name: str, gateway: EgressGatewayRef) -> dict[str, Any]:
    """An ALLOW policy without rules on the gateway's workload: nothing passes it until granted."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": metadata(name, gateway.namespace),
        "spec": {"selector": {"matchLabels": dict(gateway.selector)}, "action": "ALLOW"},
    }


def gateway_access_rule(source_namespace: str, *, host: Any, service_accounts: Iterable[str] = (), trust_domain: str,
                        methods: Sequence[str] = (), paths: Sequence[str] = ()) -> dict[str, Any]:
    """One ALLOW rule at the gateway: a namespace (or some of its identities) to one target, told
    apart by the SNI the sidecar's mutual TLS carries; methods and paths on HTTP targets only."""
    principals = [principal(trust_domain, source_namespace, account) for account in service_accounts]
    rule: dict[str, Any] = {
        "from": [{"source": {"principals": principals} if principals else {"namespaces": [source_namespace]}}],
        "when": [{"key": SNI, "values": [host]}],
    }
    operation: dict[str, Any] = {}
    if methods:
        operation["methods"] = list(methods)
    if paths:
        operation["paths"] = list(paths)
    if operation:
        rule["to"] = [{"operation": operation}]
    return rule


def gateway_grant_policy(service_entry_name: str, gateway: EgressGatewayRef, *, source_namespace: str,
                         rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": metadata(f"allow-{service_entry_name}-from-{source_namespace}", gateway.namespace),
        "spec": {"selector": {"matchLabels": dict(gateway.selector)}, "action": "ALLOW", "rules": rules},
    }


def visibility(namespace_name: str, hosts: Sequence[Any], gateway: EgressGatewayRef) -> dict[str, Any]:
    """What the namespace's sidecars may route: their cluster, the gateway and the granted hosts.
    Anything else is refused by the sidecar (`REGISTRY_ONLY`), a best effort without lockdown."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": metadata(SIDECAR_NAME, namespace_name),
        "spec": {
            "egress": [{"hosts": ["./*", "*/*.svc.cluster.local", f"{gateway.namespace}/{gateway.host}", *hosts]}],
            "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
        },
    }


