"""Kubernetes core objects: namespaces and their labels, identities, the PostgreSQL stand-in, test
clients and the NetworkPolicies that fence the stand-in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..values import POSTGRES_PORT_NAME, EgressGatewayRef, Waypoint

DATAPLANE_MODE = "istio.io/dataplane-mode"
AMBIENT = {DATAPLANE_MODE: "ambient"}
# Istio puts this label on the pods of every Gateway API gateway, waypoints included.
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
PART_OF = {"app.kubernetes.io/part-of": "ambient-egress", "app.kubernetes.io/managed-by": "pulumi"}
DATABASE_COMPONENT = {"app.kubernetes.io/component": "database"}

POSTGRES_IMAGE = "postgres:17"
CLIENT_IMAGE = "postgres:17-alpine"
POSTGRES_CONTAINER_PORT = 5432
POSTGRES_USER = "postgres"
TEST_CLIENT_NAME = "client"


def metadata(
    name: str, namespace_name: str | None = None, labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    rendered: dict[str, Any] = {"name": name, "labels": {**PART_OF, **(labels or {})}}
    if namespace_name is not None:
        rendered["namespace"] = namespace_name
    if annotations:
        rendered["annotations"] = dict(annotations)
    return rendered


def namespace(name: str, *, ambient: bool) -> dict[str, Any]:
    """A namespace the stack owns: created with it, deleted with it."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata(name, labels=AMBIENT if ambient else None)}


def namespace_labels(name: str) -> dict[str, Any]:
    """What the stack sets on a namespace it does not own: only the ambient enrolment label, so
    the namespace, its other labels and everything in it stay its owner's."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(AMBIENT)}}


def service_account(name: str, namespace_name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(name, namespace_name)}


def _stand_in_selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": name}


def _stand_in_labels(name: str) -> dict[str, str]:
    return {**_stand_in_selector(name), **DATABASE_COMPONENT}


def stand_in_secret(name: str, namespace_name: str, password: Any) -> dict[str, Any]:
    """The stand-in's credentials; the password is a Pulumi secret output."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(f"{name}-credentials", namespace_name, _stand_in_labels(name)),
        "type": "Opaque",
        "stringData": {"POSTGRES_USER": POSTGRES_USER, "POSTGRES_PASSWORD": password},
    }


def stand_in_deployment(name: str, namespace_name: str, *, image: str = POSTGRES_IMAGE) -> dict[str, Any]:
    selector = _stand_in_selector(name)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, namespace_name, _stand_in_labels(name)),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**PART_OF, **_stand_in_labels(name)}},
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
    """The stand-in behind a LoadBalancer, so it is reached by an address outside the cluster."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, namespace_name, _stand_in_labels(name)),
        "spec": {
            "type": "LoadBalancer",
            "selector": _stand_in_selector(name),
            "ports": [{"name": POSTGRES_PORT_NAME, "port": port, "targetPort": "postgres", "protocol": "TCP"}],
        },
    }


def stand_in_ingress_policy(name: str, namespace_name: str, door: Waypoint | EgressGatewayRef) -> dict[str, Any]:
    """Only the egress door's pods may connect, the waypoint's or the egress gateway's: closes
    `<db>.<ns>.svc` and raw pod-IP paths."""
    if isinstance(door, Waypoint):
        suffix, pods = "waypoint", {GATEWAY_NAME_LABEL: door.name}
    else:
        suffix, pods = "gateway", dict(door.selector)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(f"{name}-from-egress-{suffix}", namespace_name),
        "spec": {
            "podSelector": {"matchLabels": _stand_in_selector(name)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: door.namespace}},
                            "podSelector": {"matchLabels": pods},
                        }
                    ],
                    "ports": [{"port": POSTGRES_CONTAINER_PORT, "protocol": "TCP"}],
                }
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
        "metadata": metadata(TEST_CLIENT_NAME, namespace_name, {"app.kubernetes.io/name": TEST_CLIENT_NAME}),
        "spec": spec,
    }


EGRESS_LOCKDOWN_NAME = "egress-lockdown"


def egress_lockdown_policy(namespace_name: str, *, allow_cidrs: Sequence[str] = ()) -> dict[str, Any]:
    """The namespace's pods may send only to pods in the cluster, and to `allow_cidrs`.

    Ambient's ztunnel passes traffic for a host no ServiceEntry claims straight out, and a pod that
    opts out of capture is never redirected at all; the CNI sees either as the pod dialling the
    destination. With this policy the only way out is the egress waypoint, a pod the client reaches
    over HBONE on 15008 (istio.io ambient/usage/networkpolicy). Cluster DNS is a pod too; the API
    server and a NodeLocal DNS address are not, and need `allow_cidrs`.
    """
    egress: list[dict[str, Any]] = [{"to": [{"namespaceSelector": {}}]}]
    if allow_cidrs:
        egress.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in allow_cidrs]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(EGRESS_LOCKDOWN_NAME, namespace_name),
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": egress},
    }
