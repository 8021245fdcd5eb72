"""Every manifest the program renders is one the API server would accept.

Custom resources are checked against the upstream CRDs in `../shared/schemas/`, core ones with
`kubernetes-validate` (see `tests/schema.py`). The program runs on Pulumi's mock engine for the dev
stack and for a config that turns on every option, so each kind of object it can render is seen.
"""

from __future__ import annotations

from typing import Any

import pytest

from components import manifests
from components.values import ServicePort, Waypoint

from .support import DEV_LOAD_BALANCERS, run, stack_values
from .support.schema import (
    KUBERNETES_VERSION,
    SCHEMAS_MISSING_REASON,
    CustomResourceValidator,
    custom_resource_schemas,
    has_schema,
    is_custom_resource,
    schemas_available,
    validate_core_resource,
    validate_custom_resource,
    validate_manifest,
    with_defaults,
)

# Only the core-resource checks stand without the CRDs: telling a custom resource from a core one
# needs the CRDs' groups, so every test that meets a rendered manifest needs them too.
requires_schemas = pytest.mark.skipif(not schemas_available(), reason=SCHEMAS_MISSING_REASON)

EVERY_OPTION_CONFIG = {
    "egressNamespace": "egress",
    "databaseNamespace": "databases",
    "waypointName": "egress-waypoint",
    "trustDomain": "example.org",
    "databases": [
        {"name": "orders", "address": "10.20.30.40", "port": 6432},
        {"name": "billing", "address": "billing.db.example.com"},
        {"name": "stand-in", "port": 15432},
    ],
    "services": [
        {"name": "httpbin", "host": "httpbin.org", "ports": [{"number": 80, "protocol": "HTTP"}],
         "tlsOrigination": True, "tlsCredentialName": "httpbin-cacert", "requestHeaders": {"x-egress": "audited"},
         "sampleRequests": [{"method": "GET", "path": "/get"}]},
        {"name": "queue", "host": "192.0.2.5", "ports": [{"number": 5671, "protocol": "TLS", "name": "amqps"}]},
    ],
    "grants": [
        {"namespace": "shop", "databases": ["orders", "billing"], "serviceAccounts": ["app"],
         "services": ["queue", {"name": "httpbin", "methods": ["GET"], "paths": ["/get", "/anything/*"]}]},
        {"namespace": "reports", "createNamespace": True, "databases": ["orders", "stand-in"],
         "egressLockdown": {"allowCidrs": ["10.96.0.10"]},
         "services": [{"name": "httpbin", "serviceAccounts": ["admin"]}]},
    ],
    "testClients": True,
    "bypassProtection": {"serviceEntryAddresses": True, "databaseIngressPolicy": True},
    "egressLockdown": {"allowCidrs": ["10.96.0.1", "169.254.20.10/32"]},
    "serviceEntryAdmission": {"allowedNamespaces": ["other-egress"]},
}
# A cloud that reports a hostname rather than an IP, so the stand-in's ServiceEntry names a DNS host.
EVERY_OPTION_LOAD_BALANCERS = {"stand-in": {"hostname": "stand-in.elb.example.com"}}
STACKS = {
    "dev": lambda: run(stack_values("dev"), DEV_LOAD_BALANCERS),
    "prod": lambda: run(stack_values("prod"), {}),
    "every-option": lambda: run(EVERY_OPTION_CONFIG, EVERY_OPTION_LOAD_BALANCERS),
    "sidecar": lambda: run({**EVERY_OPTION_CONFIG, "dataplane": "sidecar",
                            "services": [{**service, "ports": service["ports"][:1]}
                                         for service in EVERY_OPTION_CONFIG["services"]]},
                           EVERY_OPTION_LOAD_BALANCERS),
    "bootstrap": lambda: run(stack_values("dev", istio={"install": True, "version": "1.30.3"}, gatewayApi={"install": True}),
                             DEV_LOAD_BALANCERS),
}


def _identity(manifest: dict[str, Any]) -> str:
    metadata = manifest.get("metadata", {})
    name = f"{metadata['namespace']}/{metadata['name']}" if "namespace" in metadata else metadata.get("name")
    return f"{manifest.get('kind')} {name}"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every object each stack creates or labels."""
    programs = {stack: program() for stack, program in STACKS.items()}
    return {stack: [*program.manifests(), *program.patches()] for stack, program in programs.items()}


@requires_schemas
@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_manifest_conforms_to_its_schema(rendered, stack):
    failures = {_identity(manifest): errors for manifest in rendered[stack] if (errors := validate_manifest(manifest))}
    assert failures == {}


@requires_schemas
def test_every_rendered_kind_has_a_schema(rendered):
    kinds = {(manifest["apiVersion"], manifest["kind"])
             for manifests_of_stack in rendered.values() for manifest in manifests_of_stack}
    unknown = sorted(kind for kind in kinds if not has_schema(*kind))
    assert unknown == [], f"no CRD and no Kubernetes {KUBERNETES_VERSION} schema for these kinds"


@requires_schemas
def test_both_kinds_of_schema_are_exercised(rendered):
    every = [manifest for manifests_of_stack in rendered.values() for manifest in manifests_of_stack]
    assert any(is_custom_resource(manifest) for manifest in every)
    assert any(not is_custom_resource(manifest) for manifest in every)


# --- the validators can fail ----------------------------------------------------------------------

WAYPOINT = Waypoint(name="waypoint", namespace="istio-egress")


def _service_entry(**spec_changes: Any) -> dict[str, Any]:
    manifest = manifests.service_entry(
        "postgres-1", "istio-egress", host="203.0.113.10.nip.io", addresses=["203.0.113.10"],
        ports=[ServicePort.tcp(5432, name="tcp-postgres")], waypoint=WAYPOINT,
    )
    manifest["spec"].update(spec_changes)
    return manifest


def _grant_policy(**spec_changes: Any) -> dict[str, Any]:
    manifest = manifests.grant_policy("postgres-1", "istio-egress", source_namespace="rds-demo-1",
                                      rules=[manifests.access_rule("rds-demo-1", ports=[5432], trust_domain="cluster.local")])
    manifest["spec"].update(spec_changes)
    return manifest


def _gateway_with_listeners(*listeners: dict[str, Any]) -> dict[str, Any]:
    manifest = manifests.waypoint_gateway(WAYPOINT)
    manifest["spec"]["listeners"] = list(listeners)
    return manifest


def _deployment_without_selector() -> dict[str, Any]:
    manifest = manifests.stand_in_deployment("postgres-1", "db")
    del manifest["spec"]["selector"]
    return manifest


def _secret_with_number() -> dict[str, Any]:
    manifest = manifests.stand_in_secret("postgres-1", "db", "password")
    manifest["stringData"]["PGPORT"] = 5432
    return manifest


MESH_LISTENER = {"name": "mesh", "port": 15008, "protocol": "HBONE"}

BROKEN_CUSTOM_RESOURCES = [
    pytest.param(_service_entry(resolution="BOGUS"), "$.spec.resolution", id="ServiceEntry resolution BOGUS"),
    pytest.param(_service_entry(resolutoin="DNS"), "$.spec", id="ServiceEntry misspelt field"),
    pytest.param(_service_entry(ports=[{"number": 70000, "name": "tcp", "protocol": "TCP"}]),
                 "$.spec.ports[0].number", id="ServiceEntry port out of range"),
    pytest.param(_grant_policy(action="PERMIT"), "$.spec.action", id="AuthorizationPolicy action PERMIT"),
    pytest.param(_grant_policy(selector={"matchLabels": {"app": "x"}}), "$.spec",
                 id="AuthorizationPolicy selector and targetRefs (CEL rule)"),
    pytest.param(_gateway_with_listeners({**MESH_LISTENER, "port": "15008"}), "$.spec.listeners[0].port",
                 id="Gateway listener port as a string"),
    pytest.param(_gateway_with_listeners(MESH_LISTENER, {**MESH_LISTENER, "port": 15009}), "$.spec.listeners",
                 id="Gateway listener names repeated"),
    pytest.param({**manifests.waypoint_gateway(WAYPOINT), "kind": "Gateways"}, "$",
                 id="unknown Gateway API kind"),
]


@requires_schemas
@pytest.mark.parametrize(("manifest", "path"), BROKEN_CUSTOM_RESOURCES)
def test_custom_resource_validation_rejects(manifest, path):
    errors = validate_custom_resource(manifest)
    assert any(error.startswith(f"{path}: ") for error in errors), errors


BROKEN_CORE_RESOURCES = [
    pytest.param(_deployment_without_selector(), "$.spec", id="Deployment missing selector"),
    pytest.param(_secret_with_number(), "$.stringData.PGPORT", id="Secret stringData value a number"),
    pytest.param({**manifests.namespace("db", ambient=False), "spec": {"finalizer": ["x"]}}, "$.spec",
                 id="Namespace misspelt field"),
    pytest.param({**manifests.namespace("db", ambient=False), "kind": "Namespaces"}, "$",
                 id="unknown core kind"),
]


@pytest.mark.parametrize(("manifest", "path"), BROKEN_CORE_RESOURCES)
def test_core_resource_validation_rejects(manifest, path):
    errors = validate_core_resource(manifest)
    assert any(error.startswith(f"{path}: ") for error in errors), errors


@requires_schemas
def test_manifest_validation_dispatches_by_api_group():
    assert validate_manifest(_service_entry(resolution="BOGUS")) != []
    assert validate_manifest(_deployment_without_selector()) != []
    assert is_custom_resource(manifests.waypoint_gateway(WAYPOINT))
    assert not is_custom_resource(manifests.stand_in_ingress_policy("postgres-1", "db", WAYPOINT))


def test_cel_rule_that_cannot_be_evaluated_is_an_error():
    validator = CustomResourceValidator({"x-kubernetes-validations": [{"rule": "isURL(self)", "message": "not a URL"}]})
    messages = [error.message for error in validator.iter_errors("https://example.com")]
    assert messages == ["CEL rule could not be evaluated (undeclared reference to 'isURL'): isURL(self)"]


def test_transition_rule_is_left_to_updates():
    validator = CustomResourceValidator({"x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}]})
    assert list(validator.iter_errors("value")) == []


@requires_schemas
def test_schema_defaults_are_applied_before_validation():
    gateway = _gateway_with_listeners(MESH_LISTENER)
    defaulted = with_defaults(gateway, custom_resource_schemas()[(gateway["apiVersion"], gateway["kind"])])
    assert defaulted["spec"]["listeners"][0]["allowedRoutes"] == {"namespaces": {"from": "Same"}}
