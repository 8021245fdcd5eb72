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
    )
