"""Tiny builders of hand-written manifests, reached through the `k8s` fixture, and the seed topology.

The builders live behind a fixture rather than an importable module so the tests run the same
under any pytest import mode and beside other test directories.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

Manifest = dict[str, Any]

EGRESS = "istio-egress"
POSTGRES = 5432
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def namespace(name: str, *, ambient: bool = True, labels: dict[str, str] | None = None) -> Manifest:
    mode = {"istio.io/dataplane-mode": "ambient"} if ambient else {}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {**mode, **(labels or {})}}}


def waypoint(
    name: str = "waypoint",
    namespace: str = EGRESS,
    *,
    gateway_class: str = "istio-waypoint",
    allowed_namespaces: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> Manifest:
    """`allowed_namespaces` is the HBONE listener's `allowedRoutes.namespaces`; without it, `Same`."""
    listener: dict[str, Any] = {"name": "mesh", "port": 15008, "protocol": "HBONE"}
    if allowed_namespaces is not None:
        listener["allowedRoutes"] = {"namespaces": allowed_namespaces}
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"gatewayClassName": gateway_class, "listeners": [listener]},
    }


def service_entry(
    name: str,
    *,
    namespace: str = EGRESS,
    host: str | None = None,
    ports: tuple[tuple[int, str], ...] = ((POSTGRES, "TCP"),),
    waypoint: str | None = "waypoint",
    waypoint_namespace: str | None = None,
    addresses: tuple[str, ...] = (),
) -> Manifest:
    labels = {"istio.io/use-waypoint": waypoint} if waypoint else {}
    if waypoint_namespace:
        labels["istio.io/use-waypoint-namespace"] = waypoint_namespace
    spec: dict[str, Any] = {
        "hosts": [host or f"{name}.nip.io"],
        "location": "MESH_EXTERNAL",
        "resolution": "DNS",
        "ports": [
            {"number": number, "name": f"{protocol.lower()}-{number}", "protocol": protocol}
            for number, protocol in ports
        ],
    }
    if addresses:
        spec["addresses"] = list(addresses)
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def policy(
    name: str,
    target: str = "postgres-1",
    *,
    namespace: str = EGRESS,
    action: str = "ALLOW",
    rules: list[dict[str, Any]] | None = None,
    target_kind: str = "ServiceEntry",
) -> Manifest:
    group = "networking.istio.io" if target_kind == "ServiceEntry" else "gateway.networking.k8s.io"
    spec: dict[str, Any] = {"targetRefs": [{"kind": target_kind, "group": group, "name": target}], "action": action}
    if rules is not None:
        spec["rules"] = rules
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def rule(
    source: dict[str, Any] | None = None, operation: dict[str, Any] | None = None, when: list[dict] | None = None
) -> dict[str, Any]:
    built: dict[str, Any] = {}
    if source is not None:
        built["from"] = [{"source": source}]
    if operation is not None:
        built["to"] = [{"operation": operation}]
    if when is not None:
        built["when"] = when
    return built


def allow_nothing(target: str) -> Manifest:
    return policy(f"{target}-allow-nothing", target)


def grant(target: str, source_namespace: str, *, namespace: str = EGRESS) -> Manifest:
    """The project's grant: one source namespace, the ServiceEntry's port."""
    return policy(
        f"allow-{target}-from-{source_namespace}",
        target,
        namespace=namespace,
        rules=[rule({"namespaces": [source_namespace]}, {"ports": [str(POSTGRES)]})],
    )


def grant_service_accounts(
    target: str, source_namespace: str, *accounts: str, trust_domain: str = "cluster.local"
) -> Manifest:
    """The project's grant to some service accounts of a namespace, as principals."""
    principals = [f"{trust_domain}/ns/{source_namespace}/sa/{account}" for account in accounts]
    return policy(
        f"allow-{target}-from-{source_namespace}",
        target,
        rules=[rule({"principals": principals}, {"ports": [str(POSTGRES)]})],
    )


def stand_in_pods(name: str) -> dict[str, str]:
    """The labels a stand-in's Service selects its pods by."""
    return {"app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": name}


def database(name: str, namespace: str = "db", *, kind: str = "Deployment") -> Manifest:
    """A stand-in database: its Deployment, or its LoadBalancer Service, named like its ServiceEntry and on
    its port, as the project renders them (no address shown: the cloud assigns it on apply)."""
    api_version = "v1" if kind == "Service" else "apps/v1"
    metadata = {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/instance": name}}
    manifest: Manifest = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    if kind == "Service":
        manifest["spec"] = {
            "type": "LoadBalancer",
            "selector": stand_in_pods(name),
            "ports": [{"name": "tcp-postgres", "port": POSTGRES, "protocol": "TCP", "targetPort": "postgres"}],
        }
    return manifest


def network_policy(
    name: str,
    namespace: str,
    *,
    pod_selector: dict[str, Any] | None = None,
    ingress: list[dict[str, Any]] | None = None,
    egress: list[dict[str, Any]] | None = None,
    policy_types: list[str] | None = None,
) -> Manifest:
    """Without policy_types, Kubernetes infers them from the ingress and egress sections."""
    spec: dict[str, Any] = {"podSelector": pod_selector or {}}
    if policy_types is not None:
        spec["policyTypes"] = policy_types
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def waypoint_only_ingress(database_name: str, namespace: str = "db") -> Manifest:
    """The project's stand-in ingress policy: only the egress waypoint's pods may connect."""
    waypoint_pods = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: EGRESS}},
        "podSelector": {"matchLabels": {GATEWAY_NAME_LABEL: "waypoint"}},
    }
    return network_policy(
        f"{database_name}-from-egress-waypoint",
        namespace,
        pod_selector={"matchLabels": stand_in_pods(database_name)},
        policy_types=["Ingress"],
        ingress=[{"from": [waypoint_pods], "ports": [{"port": POSTGRES, "protocol": "TCP"}]}],
    )


def deny_database_egress(namespace: str, *ips: str) -> Manifest:
    """The project's client egress policy: everything but the databases' IPs, and in-cluster peers."""
    return network_policy(
        "deny-direct-database-egress",
        namespace,
        policy_types=["Egress"],
        egress=[
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [f"{ip}/32" for ip in ips]}}]},
            {"to": [{"namespaceSelector": {}}]},
        ],
    )


def workload(
    name: str,
    namespace: str = "rds-demo-1",
    *,
    kind: str = "Deployment",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    service_account: str | None = None,
    host_network: bool = False,
) -> Manifest:
    """A Pod, or a workload with a pod template (a CronJob's nested in its job template)."""
    pod_metadata: dict[str, Any] = {"labels": {"app": name, **(labels or {})}}
    if annotations:
        pod_metadata["annotations"] = annotations
    pod_spec: dict[str, Any] = {"containers": [{"name": name, "image": "postgres:17-alpine"}]}
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    if host_network:
        pod_spec["hostNetwork"] = True
    api_version = {"Pod": "v1", "Job": "batch/v1", "CronJob": "batch/v1"}.get(kind, "apps/v1")
    metadata = {"name": name, "namespace": namespace}
    if kind == "Pod":
        return {"apiVersion": api_version, "kind": kind, "metadata": {**metadata, **pod_metadata}, "spec": pod_spec}
    template = {"metadata": pod_metadata, "spec": pod_spec}
    spec: dict[str, Any] = {"template": template}
    if kind == "CronJob":
        spec = {"schedule": "@daily", "jobTemplate": {"spec": spec}}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}


def seed(*, protected: bool = True) -> list[Manifest]:
    """The reference design: two databases, each granted to one namespace, behind one waypoint.

    Protected, as the project renders it, the ServiceEntries pin their IPs and the stand-ins admit
    only the waypoint; unprotected, both stand-ins are reachable around the waypoint.
    """
    addresses = {"postgres-1": "10.0.0.1", "postgres-2": "10.0.0.2"}
    manifests = [
        namespace("db", ambient=False),
        namespace("rds-demo-1"),
        namespace("rds-demo-2"),
        namespace(EGRESS),
        waypoint(),
        *(
            service_entry(name, host=f"{ip}.nip.io", addresses=(ip,) if protected else ())
            for name, ip in addresses.items()
        ),
        allow_nothing("postgres-1"),
        allow_nothing("postgres-2"),
        grant("postgres-1", "rds-demo-1"),
        grant("postgres-2", "rds-demo-2"),
    ]
    for name in addresses:
        manifests += [database(name), database(name, kind="Service")]
        if protected:
            manifests.append(waypoint_only_ingress(name))
    return manifests


def one_database(
    *policies: Manifest, clients: tuple[str, ...] = ("rds-demo-1",), **replaced: Manifest
) -> list[Manifest]:
    """Ambient client namespaces, the egress namespace, the waypoint and postgres-1, plus the policies
    under test; `replaced` gives another `egress_namespace`, `waypoint` or `service_entry`."""
    parts = {
        "egress_namespace": namespace(EGRESS),
        "waypoint": waypoint(),
        "service_entry": service_entry("postgres-1"),
    }
    if set(replaced) - set(parts):
        raise TypeError(f"one_database replaces only {', '.join(parts)} (got {', '.join(replaced)})")
    return [*(namespace(client) for client in clients), *{**parts, **replaced}.values(), *policies]


# Sidecar mode: seed 001's objects against an egress gateway in istio-system, as the project renders them.
GATEWAY_NAMESPACE = "istio-system"
GATEWAY_SERVICE = "istio-egressgateway"
GATEWAY_HOST = f"{GATEWAY_SERVICE}.{GATEWAY_NAMESPACE}.svc.cluster.local"
GATEWAY_PORT = 443
GATEWAY_PODS = {"istio": "egressgateway"}
DEFAULT_HOP = {"mode": "ISTIO_MUTUAL"}  # with the target's host as sni


def injected(name: str, *, labels: dict[str, str] | None = None) -> Manifest:
    """A namespace labelled for sidecar injection."""
    return namespace(name, ambient=False, labels={"istio-injection": "enabled", **(labels or {})})


def sidecar(namespace_name: str, *hosts: str, mode: str | None = "REGISTRY_ONLY", name: str = "egress-visibility",
            selector: dict[str, str] | None = None, port: int | None = None) -> Manifest:
    """A Sidecar resource importing `hosts` (the project's: its own namespace, the cluster's Services
    and the gateway's, then the granted hosts), on `port` only if given."""
    listener: dict[str, Any] = {"hosts": list(hosts or ("./*", "*/*.svc.cluster.local", f"{GATEWAY_NAMESPACE}/{GATEWAY_HOST}"))}
    if port is not None:
        listener["port"] = {"number": port, "protocol": "TCP", "name": f"tcp-{port}"}
    spec: dict[str, Any] = {"egress": [listener]}
    if mode is not None:
        spec["outboundTrafficPolicy"] = {"mode": mode}
    if selector is not None:
        spec["workloadSelector"] = {"labels": selector}
    return {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": {"name": name, "namespace": namespace_name}, "spec": spec}


def gateway_target(
    name: str = "postgres-1",
    *,
    host: str | None = None,
    port: int = POSTGRES,
    protocol: str = "TCP",
    export_to: tuple[str, ...] | None = (".", GATEWAY_NAMESPACE, "rds-demo-1"),
    hop: dict[str, Any] | None = DEFAULT_HOP,
    hop_namespace: str = GATEWAY_NAMESPACE,
    server_tls: str | None = "ISTIO_MUTUAL",
    route_to_gateway: bool = True,
    addresses: tuple[str, ...] = (),
) -> list[Manifest]:
    """One target routed through the egress gateway: its ServiceEntry, the gateway's server, the
    hop's DestinationRule (`hop` its TLS settings, None for none) and the VirtualService for `mesh`
    and the gateway. No policy: see `gateway_policy`."""
    host = host or f"{name}.nip.io"
    entry = service_entry(name, host=host, ports=((port, protocol),), waypoint=None, addresses=addresses)
    if export_to is not None:
        entry["spec"]["exportTo"] = list(export_to)
    http = protocol in ("HTTP", "HTTP2", "GRPC")
    server_protocol = "HTTPS" if http else "TLS"
    server: dict[str, Any] = {"port": {"number": GATEWAY_PORT, "name": f"tls-{name}", "protocol": server_protocol},
                              "hosts": [host]}
    if server_tls is not None:
        server["tls"] = {"mode": server_tls}
    else:
        server["port"]["protocol"] = "HTTP" if http else "TCP"
    gateway = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
               "metadata": {"name": f"egress-{name}", "namespace": EGRESS},
               "spec": {"selector": dict(GATEWAY_PODS), "servers": [server]}}
    subset: dict[str, Any] = {"name": name}
    if hop is not None:
        subset["trafficPolicy"] = {"portLevelSettings": [{"port": {"number": GATEWAY_PORT}, "tls": {"sni": host, **hop}}]}
    rule = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": f"{name}-via-egress-gateway", "namespace": hop_namespace},
            "spec": {"host": GATEWAY_HOST, "exportTo": ["*"], "subsets": [subset]}}
    to_gateway = {"destination": {"host": GATEWAY_HOST, "subset": name, "port": {"number": GATEWAY_PORT}}}
    out = {"destination": {"host": host, "port": {"number": port}}}
    server_ref = f"{EGRESS}/egress-{name}"
    from_mesh = {"gateways": ["mesh"], "port": port}
    at_gateway = {"gateways": [server_ref], "port": GATEWAY_PORT}
    kind = "http" if http else "tcp"
    routes = [{"match": [at_gateway], "route": [out]}]
    if route_to_gateway:
        routes.insert(0, {"match": [from_mesh], "route": [to_gateway]})
    spec: dict[str, Any] = {"hosts": [host], "gateways": [server_ref, "mesh"], kind: routes}
    if export_to is not None:
        spec["exportTo"] = list(export_to)
    route = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
             "metadata": {"name": f"{name}-through-egress-gateway", "namespace": EGRESS}, "spec": spec}
    return [entry, gateway, rule, route]


def gateway_policy(name: str, *rules: dict[str, Any], action: str = "ALLOW", namespace_name: str = GATEWAY_NAMESPACE,
                   selector: dict[str, str] | None = GATEWAY_PODS) -> Manifest:
    """An AuthorizationPolicy on the egress gateway's workload; no rules at all is allow-nothing."""
    spec: dict[str, Any] = {"action": action}
    if selector is not None:
        spec["selector"] = {"matchLabels": dict(selector)}
    if rules:
        spec["rules"] = list(rules)
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": namespace_name}, "spec": spec}


def gateway_grant(target: str, source_namespace: str, *, host: str | None = None,
                  principals: tuple[str, ...] = (), operation: dict[str, Any] | None = None) -> Manifest:
    """The project's grant at the gateway: a namespace (or principals of it), told apart by SNI."""
    source = {"principals": list(principals)} if principals else {"namespaces": [source_namespace]}
    when = [{"key": "connection.sni", "values": [host or f"{target}.nip.io"]}]
    return gateway_policy(f"allow-{target}-from-{source_namespace}", rule(source, operation, when))


def sidecar_seed(*grants: tuple[str, str]) -> list[Manifest]:
    """Seed 000's topology in sidecar mode: two injected client namespaces, each with its Sidecar
    resource, postgres-1 and postgres-2 through the gateway, closed by allow-nothing and opened by
    `grants` of (target, namespace); by default postgres-1 to rds-demo-1 and postgres-2 to rds-demo-2."""
    grants = grants or (("postgres-1", "rds-demo-1"), ("postgres-2", "rds-demo-2"))
    manifests = [injected("rds-demo-1"), injected("rds-demo-2"), namespace(EGRESS, ambient=False),
                 namespace(GATEWAY_NAMESPACE, ambient=False), gateway_policy("allow-nothing")]
    for target in ("postgres-1", "postgres-2"):
        granted = tuple(client for name, client in grants if name == target)
        manifests += gateway_target(target, export_to=(".", GATEWAY_NAMESPACE, *granted))
    for client in ("rds-demo-1", "rds-demo-2"):
        visible = [f"{EGRESS}/{target}.nip.io" for target, granted in grants if granted == client]
        manifests.append(sidecar(client, "./*", "*/*.svc.cluster.local", f"{GATEWAY_NAMESPACE}/{GATEWAY_HOST}", *visible))
    manifests += [gateway_grant(target, client) for target, client in grants]
    return manifests


@pytest.fixture
def k8s() -> SimpleNamespace:
    return SimpleNamespace(
        EGRESS=EGRESS,
        POSTGRES=POSTGRES,
        namespace=namespace,
        waypoint=waypoint,
        service_entry=service_entry,
        policy=policy,
        rule=rule,
        allow_nothing=allow_nothing,
        grant=grant,
        grant_service_accounts=grant_service_accounts,
        stand_in_pods=stand_in_pods,
        database=database,
        network_policy=network_policy,
        waypoint_only_ingress=waypoint_only_ingress,
        deny_database_egress=deny_database_egress,
        workload=workload,
        seed=seed,
        one_database=one_database,
        GATEWAY_NAMESPACE=GATEWAY_NAMESPACE,
        GATEWAY_HOST=GATEWAY_HOST,
        injected=injected,
        sidecar=sidecar,
        gateway_target=gateway_target,
        gateway_policy=gateway_policy,
        gateway_grant=gateway_grant,
        sidecar_seed=sidecar_seed,
    )
