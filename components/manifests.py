"""Every Kubernetes, Istio and Gateway API manifest the project renders, as plain dicts.

Pure functions of plain values: the components call them (inside `Output.apply` where a value is
only known at deploy time), and the tests, the plan and the schema checks read what they return.
Keeping them in one place means one definition of each object and its labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config import ServicePort, is_ipv4

AMBIENT = {"istio.io/dataplane-mode": "ambient"}
USE_WAYPOINT = "istio.io/use-waypoint"
USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace"
# Istio puts this label on the pods of every Gateway API gateway, waypoints included.
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
PART_OF = {"app.kubernetes.io/part-of": "ambient-egress", "app.kubernetes.io/managed-by": "pulumi"}
DATABASE_COMPONENT = {"app.kubernetes.io/component": "database"}

POSTGRES_IMAGE = "postgres:17"
CLIENT_IMAGE = "postgres:17-alpine"
POSTGRES_CONTAINER_PORT = 5432
POSTGRES_USER = "postgres"
POSTGRES_PORT_NAME = "tcp-postgres"
TEST_CLIENT_NAME = "client"
TLS_PORT = 443

SERVICE_ENTRY_REF = {"group": "networking.istio.io", "kind": "ServiceEntry"}
GATEWAY_REF = {"group": "gateway.networking.k8s.io", "kind": "Gateway"}


@dataclass(frozen=True)
class Waypoint:
    name: str
    namespace: str


def _metadata(name: str, namespace: str | None = None, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {**PART_OF, **(labels or {})}}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def namespace(name: str, *, ambient: bool) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _metadata(name, labels=AMBIENT if ambient else None)}


def service_account(name: str, namespace_name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(name, namespace_name)}


def waypoint_gateway(waypoint: Waypoint) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": _metadata(waypoint.name, waypoint.namespace),
        "spec": {
            "gatewayClassName": "istio-waypoint",
            "listeners": [
                {"name": "mesh", "port": 15008, "protocol": "HBONE", "allowedRoutes": {"namespaces": {"from": "All"}}}
            ],
        },
    }


def waypoint_access_logging(waypoint: Waypoint) -> dict[str, Any]:
    """Envoy access logs on the waypoint: denied connections show `rbac_access_denied_matched_policy`."""
    return {
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": _metadata(f"{waypoint.name}-access-logs", waypoint.namespace),
        "spec": {
            "targetRefs": [{**GATEWAY_REF, "name": waypoint.name}],
            "accessLogging": [{"providers": [{"name": "envoy"}]}],
        },
    }


def host_for_address(address: str) -> str:
    """An IPv4 address becomes `<ip>.nip.io`, distinct from any in-cluster name; a DNS name stays."""
    return f"{address}.nip.io" if is_ipv4(address) else address


def address_from_load_balancer(status: Mapping[str, Any] | None) -> str | None:
    """The first ingress of a LoadBalancer Service status: its IP, or the hostname some clouds report."""
    status = status or {}
    # The Pulumi SDK hands typed outputs over with snake_case keys; kubectl JSON uses camelCase.
    load_balancer = status.get("load_balancer") or status.get("loadBalancer") or {}
    ingress = load_balancer.get("ingress") or []
    for entry in ingress:
        address = entry.get("ip") or entry.get("hostname")
        if address:
            return address
    return None


def service_entry(
    name: str,
    namespace_name: str,
    *,
    address: str,
    ports: Sequence[ServicePort],
    waypoint: Waypoint,
    pin_address: bool,
    tls_origination: bool = False,
) -> dict[str, Any]:
    labels = {USE_WAYPOINT: waypoint.name}
    if waypoint.namespace != namespace_name:
        labels[USE_WAYPOINT_NAMESPACE] = waypoint.namespace
    spec: dict[str, Any] = {
        "hosts": [host_for_address(address)],
        "location": "MESH_EXTERNAL",
        "resolution": "DNS",
        "ports": [
            # With TLS origination clients speak plain HTTP to the port, and the waypoint dials 443.
            {"number": port.number, "name": port.port_name, "protocol": port.protocol,
             **({"targetPort": TLS_PORT} if tls_origination else {})}
            for port in ports
        ],
    }
    if pin_address and is_ipv4(address):
        # ztunnel sends a connection to a ServiceEntry address through the waypoint; without this,
        # a client dialling the raw IP would pass straight through.
        spec["addresses"] = [address]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": _metadata(name, namespace_name, labels),
        "spec": spec,
    }


def postgres_port(number: int) -> ServicePort:
    return ServicePort(number=number, protocol="TCP", name=POSTGRES_PORT_NAME)


def tls_origination_rule(name: str, namespace_name: str, host: str) -> dict[str, Any]:
    """The waypoint wraps the plain HTTP it receives in TLS (SNI and verification by `host`)."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": _metadata(f"{name}-tls-origination", namespace_name),
        "spec": {"host": host, "trafficPolicy": {"tls": {"mode": "SIMPLE", "sni": host}}},
    }


def request_header_route(name: str, namespace_name: str, *, host: str, port: int, headers: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Headers added at the egress waypoint: an HTTPRoute bound to the ServiceEntry, routing back to its host.

    Gateway API routes are how ambient waypoints take traffic rules; VirtualService there is alpha.
    """
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _metadata(f"{name}-request-headers", namespace_name),
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


def _authorization_policy(name: str, namespace_name: str, service_entry_name: str, rules: list[dict] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"targetRefs": [{**SERVICE_ENTRY_REF, "name": service_entry_name}], "action": "ALLOW"}
    if rules is not None:
        spec["rules"] = rules
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": _metadata(name, namespace_name),
        "spec": spec,
    }


def allow_nothing_policy(service_entry_name: str, namespace_name: str) -> dict[str, Any]:
    """An ALLOW policy without rules matches nothing: the ServiceEntry is closed until granted."""
    return _authorization_policy(f"{service_entry_name}-allow-nothing", namespace_name, service_entry_name, None)


def principal(trust_domain: str, namespace_name: str, service_account_name: str) -> str:
    return f"{trust_domain}/ns/{namespace_name}/sa/{service_account_name}"


def grant_policy_name(service_entry_name: str, source_namespace: str) -> str:
    return f"allow-{service_entry_name}-from-{source_namespace}"


def access_rule(
    source_namespace: str,
    *,
    ports: Iterable[int],
    service_accounts: Iterable[str] = (),
    trust_domain: str = "cluster.local",
    methods: Sequence[str] = (),
    paths: Sequence[str] = (),
) -> dict[str, Any]:
    """One ALLOW rule: a source namespace, or only some of its service accounts, to some ports.

    Methods and paths belong on HTTP ports only: a TCP rule may use only ports, namespaces and
    principals, and an ALLOW rule carrying HTTP fields would never match TCP traffic.
    """
    principals = [principal(trust_domain, source_namespace, account) for account in service_accounts]
    source = {"principals": principals} if principals else {"namespaces": [source_namespace]}
    operation: dict[str, Any] = {"ports": [str(port) for port in ports]}
    if methods:
        operation["methods"] = list(methods)
    if paths:
        operation["paths"] = list(paths)
    return {"from": [{"source": source}], "to": [{"operation": operation}]}


def grant_policy(service_entry_name: str, namespace_name: str, *, source_namespace: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """ALLOW one source namespace's access to one ServiceEntry: one policy per grant and target."""
    return _authorization_policy(grant_policy_name(service_entry_name, source_namespace), namespace_name, service_entry_name, rules)


def _stand_in_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": name}


def stand_in_secret(name: str, namespace_name: Any, password: Any) -> dict[str, Any]:
    """The stand-in's credentials; the password (and the namespace) may be Pulumi outputs."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(f"{name}-credentials", namespace_name, {**_stand_in_labels(name), **DATABASE_COMPONENT}),
        "type": "Opaque",
        "stringData": {"POSTGRES_USER": POSTGRES_USER, "POSTGRES_PASSWORD": password},
    }


def stand_in_deployment(name: str, namespace_name: str, *, image: str = POSTGRES_IMAGE) -> dict[str, Any]:
    selector = _stand_in_labels(name)
    labels = {**selector, **DATABASE_COMPONENT}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, namespace_name, labels),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**PART_OF, **labels}},
                "spec": {
                    "containers": [
                        {
                            "name": "postgres",
                            "image": image,
                            "ports": [{"name": "postgres", "containerPort": POSTGRES_CONTAINER_PORT, "protocol": "TCP"}],
                            "envFrom": [{"secretRef": {"name": f"{name}-credentials"}}],
                            "env": [{"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}],
                            "readinessProbe": {
                                "exec": {"command": ["pg_isready", "-U", POSTGRES_USER, "-h", "127.0.0.1",
                                                     "-p", str(POSTGRES_CONTAINER_PORT)]},
                                "initialDelaySeconds": 5,
                                "periodSeconds": 5,
                            },
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
                        }
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    }


def stand_in_service(name: str, namespace_name: str, *, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, namespace_name, {**_stand_in_labels(name), **DATABASE_COMPONENT}),
        "spec": {
            "type": "LoadBalancer",
            "selector": _stand_in_labels(name),
            "ports": [{"name": POSTGRES_PORT_NAME, "port": port, "targetPort": "postgres", "protocol": "TCP"}],
        },
    }


def stand_in_ingress_policy(name: str, namespace_name: str, waypoint: Waypoint) -> dict[str, Any]:
    """Only the egress waypoint's pods may connect: closes `<db>.<ns>.svc` and raw pod-IP paths."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(f"{name}-from-egress-waypoint", namespace_name),
        "spec": {
            "podSelector": {"matchLabels": _stand_in_labels(name)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: waypoint.namespace}},
                            "podSelector": {"matchLabels": {GATEWAY_NAME_LABEL: waypoint.name}},
                        }
                    ],
                    "ports": [{"port": POSTGRES_CONTAINER_PORT, "protocol": "TCP"}],
                }
            ],
        },
    }


def client_egress_policy(namespace_name: str, database_ips: Iterable[str]) -> dict[str, Any]:
    """Deny direct egress to the databases' IPs and allow everything else.

    In-cluster peers are allowed by selector as well as by ipBlock, because some CNIs (Cilium) do
    not match pod IPs against ipBlock rules.
    """
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata("deny-direct-database-egress", namespace_name),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [f"{ip}/32" for ip in sorted(set(database_ips))]}}]},
                {"to": [{"namespaceSelector": {}}]},
            ],
        },
    }


def test_client_pod(namespace_name: str, *, service_account_name: str | None = None, image: str = CLIENT_IMAGE) -> dict[str, Any]:
    """A pod with `pg_isready`, as in the reference workshop, to probe each database from the namespace."""
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": TEST_CLIENT_NAME,
                "image": image,
                "command": ["sleep", "infinity"],
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
            }
        ],
        "terminationGracePeriodSeconds": 1,
    }
    if service_account_name is not None:
        spec["serviceAccountName"] = service_account_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(TEST_CLIENT_NAME, namespace_name, {"app.kubernetes.io/name": TEST_CLIENT_NAME}),
        "spec": spec,
    }
