"""The components used as a library: composed by another program, without this repo's config."""

from __future__ import annotations

import pulumi
import pytest

from components import (
    EgressGateway, EgressGatewayArgs, ExternalDatabase, ExternalDatabaseArgs, NamespaceGrant, NamespaceGrantArgs,
)
from tools.mock_engine import RecordingMocks, is_secret, resolved, run_on_mocks

from .support import objects


def compose(outputs: dict):
    """A program of its own: a gateway, a stand-in, an existing database and one grant."""
    gateway = EgressGateway("egress", EgressGatewayArgs(namespace="mesh-egress", waypoint_name="gw"))
    stand_in = ExternalDatabase("billing", ExternalDatabaseArgs(
        waypoint_name=gateway.waypoint_name, waypoint_namespace=gateway.namespace, stand_in_namespace="databases",
    ))
    existing = ExternalDatabase("ledger", ExternalDatabaseArgs(
        waypoint_name=gateway.waypoint_name, waypoint_namespace=gateway.namespace,
        address="ledger.example.com", port=6432, service_entry_namespace="external-services",
    ))
    grant = NamespaceGrant("payments", NamespaceGrantArgs(databases=[stand_in, existing]))
    outputs.update(gateway=gateway, stand_in=stand_in, existing=existing, grant=grant)


@pytest.fixture(scope="module")
def composed():
    built: dict = {}
    program = run_on_mocks(lambda: compose(built), RecordingMocks({"billing": {"ip": "198.51.100.7"}}))
    return program, built


def test_components_register_under_their_package_type_tokens(composed):
    program, _ = composed
    component_types = sorted({r.type for r in program.resources if not r.is_kubernetes and not r.type.startswith("random:")})
    assert component_types == ["ambient-egress:index:EgressGateway", "ambient-egress:index:ExternalDatabase",
                               "ambient-egress:index:ExternalService", "ambient-egress:index:NamespaceGrant"]


def test_component_outputs_resolve_to_the_names_and_hosts_they_describe(composed):
    _, built = composed
    assert resolved(built["gateway"].namespace) == "mesh-egress"
    assert resolved(built["gateway"].waypoint_name) == "gw"
    assert resolved(built["stand_in"].host) == "198.51.100.7.nip.io"
    assert resolved(built["existing"].host) == "ledger.example.com"
    assert resolved(built["existing"].port) == 6432
    assert resolved(built["grant"].policy_names) == ["allow-billing-from-payments", "allow-ledger-from-payments"]


def test_stand_in_password_output_is_secret_and_existing_database_has_none(composed):
    _, built = composed
    assert is_secret(built["stand_in"].password)
    assert built["existing"].password is None and built["existing"].username is None


def test_service_entry_outside_the_waypoint_namespace_names_the_waypoint_namespace(composed):
    program, _ = composed
    labels = objects(program, "ServiceEntry")["external-services/ledger"]["metadata"]["labels"]
    assert labels["istio.io/use-waypoint"] == "gw"
    assert labels["istio.io/use-waypoint-namespace"] == "mesh-egress"


def test_grant_policy_lives_beside_its_service_entry(composed):
    program, _ = composed
    assert {"external-services/allow-ledger-from-payments", "mesh-egress/allow-billing-from-payments"} <= set(
        objects(program, "AuthorizationPolicy"))


def test_grant_namespace_defaults_to_the_component_name(composed):
    program, _ = composed
    assert objects(program, "Namespace")["payments"]["metadata"]["labels"]["istio.io/dataplane-mode"] == "ambient"


def test_stand_in_without_a_namespace_is_refused_with_the_fix():
    def program():
        ExternalDatabase("orphan", ExternalDatabaseArgs(waypoint_name="w", waypoint_namespace="e"))
    with pytest.raises(ValueError, match="ExternalDatabase orphan: set address, or stand_in_namespace"):
        run_on_mocks(program)


def test_access_logging_can_be_turned_off():
    program = run_on_mocks(lambda: EgressGateway("egress", EgressGatewayArgs(access_logging=False)))
    assert objects(program, "Telemetry") == {}
    assert set(objects(program, "Gateway")) == {"istio-egress/waypoint"}


def test_component_resource_options_reach_the_children():
    def program():
        provider = pulumi.ProviderResource("kubernetes", "cluster-a")
        EgressGateway("egress", opts=pulumi.ResourceOptions(providers=[provider]))
    run = run_on_mocks(program)
    assert run.of_type("kubernetes:core/v1:Namespace")
