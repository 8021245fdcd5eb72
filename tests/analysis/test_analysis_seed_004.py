"""Seed 004, Istio's own ambient egress example, as hand-written manifests: the admin identity may
do anything at httpbin.org, everyone else only `GET /get`."""

from __future__ import annotations

import pytest

from analysis import MeshIndex, ObjectRef, Request, evaluate

EGRESS = "common-infrastructure"
MANIFESTS = [
    {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "default", "labels": {"istio.io/dataplane-mode": "ambient"}},
    },
    # `istioctl waypoint apply --enroll-namespace` labels the namespace, so every ServiceEntry in it is bound.
    {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": EGRESS,
            "labels": {"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "egress-gateway"},
        },
    },
    {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "egress-gateway", "namespace": EGRESS},
        "spec": {
            "gatewayClassName": "istio-waypoint",
            "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
        },
    },
    {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "httpbin.org", "namespace": EGRESS},
        "spec": {
            "hosts": ["httpbin.org"],
            "ports": [{"number": 80, "name": "http", "protocol": "HTTP", "targetPort": 443}],
            "resolution": "DNS",
        },
    },
    {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "httpbin", "namespace": EGRESS},
        "spec": {
            "targetRefs": [{"kind": "ServiceEntry", "group": "networking.istio.io", "name": "httpbin.org"}],
            "action": "ALLOW",
            "rules": [
                {"from": [{"source": {"principals": ["cluster.local/ns/default/sa/admin"]}}]},
                {"to": [{"operation": {"methods": ["GET"], "paths": ["/get"]}}]},
            ],
        },
    },
]


@pytest.mark.parametrize(("service_account", "method", "path", "expected"), [
    ("admin", "POST", "/post", "ALLOW"),
    ("admin", "GET", "/headers", "ALLOW"),
    ("curl", "GET", "/get", "ALLOW"),
    ("curl", "POST", "/post", "DENY"),
    ("curl", "GET", "/headers", "DENY"),
])
def test_admin_may_do_anything_and_everyone_else_only_get_slash_get(service_account, method, path, expected):
    request = Request("default", ObjectRef(EGRESS, "httpbin.org"), 80, service_account=service_account,
                      method=method, path=path)
    verdict = evaluate(MeshIndex(MANIFESTS), request)
    assert verdict.decision.value == expected, verdict.reason
