"""The components used as a library: composed by another program, without this repo's config."""

from __future__ import annotations

import pulumi
import pytest

from components import (
    Access,
    EgressGateway,
    EgressGatewayArgs,
    ExternalDatabase,
    ExternalDatabaseArgs,
    ExternalService,
    ExternalServiceArgs,
    Grantee,
    NamespaceGrant,
    NamespaceGrantArgs,
    ServicePort,
)
from components.values import RouteNamespaces, Waypoint
from tools.mock_engine import DuplicateUrn, RecordingMocks, is_secret, resolved, run_on_mocks

from .support import objects


def compose(outputs: dict) -> None:
    """A program of its own: a gateway, a stand-in, an existing database and one grant."""
    gateway = EgressGateway("egress", EgressGatewayArgs(namespace="mesh-egress", waypoint_name="gw",
                                                        route_namespaces=RouteNamespaces.ALL))
    stand_in = ExternalDatabase("billing", ExternalDatabaseArgs(waypoint=gateway.waypoint, stand_in_namespace="databases"))
    existing = ExternalDatabase("ledger", ExternalDatabaseArgs(
        waypoint=gateway.waypoint, address="ledger.example.com", port=6432, namespace="external-services"))
    grant = NamespaceGrant("payments", NamespaceGrantArgs(namespace="payments", targets=[stand_in, existing]))
    outputs.update(gateway=gateway, stand_in=stand_in, existing=existing, grant=grant)


@pytest.fixture(scope="module")
def composed():
    built: dict = {}
    program = run_on_mocks(lambda: compose(built), RecordingMocks({"billing": {"ip": "198.51.100.7"}}))
    return program, built


def test_components_register_under_their_package_type_tokens(composed):
    program, _ = composed
    component_types = sorted({r.type for r in program.resources if r.type.startswith("ambient-egress:")})
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


def test_a_grant_records_both_halves_the_grantees_enrolment_and_the_targets_policy(composed):
    _, built = composed
    grant = built["grant"].grants[1]
    assert (grant.grantee.namespace, grant.target.name, grant.policy_name) == ("payments", "ledger", "allow-ledger-from-payments")
    assert grant.grantee.enrolment is not None
    assert grant.rules == [{"from": [{"source": {"namespaces": ["payments"]}}], "to": [{"operation": {"ports": ["6432"]}}]}]


def test_a_namespace_the_grant_does_not_own_is_read_and_labelled_never_created(composed):
    program, _ = composed
    assert "payments" not in objects(program, "Namespace")
    assert objects(program, "Namespace", patches=True)["payments"]["metadata"] == {
        "name": "payments", "labels": {"istio.io/dataplane-mode": "ambient"}}
    assert [r.name for r in program.reads()] == ["payments/existing-namespace: create it, or let the grant own it"]


def test_an_owned_namespace_is_created_with_its_service_accounts():
    def program():
        gateway = EgressGateway("egress")
        api = ExternalService("api", ExternalServiceArgs(address="api.example.com", ports=[ServicePort.tls(443)],
                                                         waypoint=gateway.waypoint))
        NamespaceGrant("shop", NamespaceGrantArgs(namespace="shop", targets=[api], create_namespace=True,
                                                  service_accounts=["checkout"]))
    run = run_on_mocks(program)
    assert objects(run, "Namespace")["shop"]["metadata"]["labels"]["istio.io/dataplane-mode"] == "ambient"
    assert "shop/checkout" in objects(run, "ServiceAccount")
    assert objects(run, "Namespace", patches=True) == {}


def test_a_target_grants_one_grantee_directly_and_returns_the_record():
    records = []

    def program():
        gateway = EgressGateway("egress")
        web = ExternalService("web", ExternalServiceArgs(address="web.example.com", ports=[ServicePort.http(80)],
                                                         waypoint=gateway.waypoint))
        records.append(web.grant(Grantee(namespace="shop", service_accounts=("app",)),
                                 [Access(target=web, methods=("GET",), paths=("/status",))], resource_name="shop-web"))
    run = run_on_mocks(program)
    assert records[0].rules == [{"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/app"]}}],
                                 "to": [{"operation": {"ports": ["80"], "methods": ["GET"], "paths": ["/status"]}}]}]
    assert "istio-egress/allow-web-from-shop" in objects(run, "AuthorizationPolicy")


@pytest.mark.parametrize(("build", "message"), [
    pytest.param(lambda waypoint: ExternalDatabaseArgs(waypoint=waypoint),
                 "ExternalDatabaseArgs: set address for an existing database, or stand_in_namespace", id="stand-in-namespace"),
    pytest.param(lambda waypoint: ExternalDatabaseArgs(waypoint=waypoint, address="postgres://db.example.com"),
                 "ExternalDatabaseArgs.address: must be an IPv4 address or a DNS name, not a URL", id="url-address"),
    pytest.param(lambda waypoint: ExternalServiceArgs(address="api.example.com", ports=[ServicePort.tcp(443)],
                                                      waypoint=waypoint, tls_origination=True),
                 "tls_origination needs every port to be HTTP", id="tls-origination-on-tcp"),
    pytest.param(lambda waypoint: EgressGatewayArgs(namespace="Egress"),
                 "EgressGatewayArgs.namespace: 'Egress' must be a DNS-1123 label", id="namespace-label"),
    pytest.param(lambda waypoint: ExternalServiceArgs(address="api.example.com", ports=[ServicePort.tls(443)],
                                                      waypoint=waypoint, namespace="team-a"),
                 "binds only ServiceEntries of its own namespace, not 'team-a'", id="service-entry-the-waypoint-refuses"),
    pytest.param(lambda waypoint: EgressGatewayArgs(namespace="kube-system"), "namespace 'kube-system' is reserved",
                 id="reserved-namespace"),
])
def test_bad_args_are_refused_before_anything_is_registered(build, message):
    mocks = RecordingMocks()

    def program():
        build(Waypoint(name="waypoint", namespace="istio-egress"))

    with pytest.raises(ValueError, match=message):
        run_on_mocks(program, mocks)
    assert mocks.registered == []


def test_an_access_naming_both_sides_refuses_methods_on_a_target_without_http():
    def program():
        gateway = EgressGateway("egress")
        orders = ExternalDatabase("orders", ExternalDatabaseArgs(waypoint=gateway.waypoint, address="10.0.0.5"))
        NamespaceGrant("shop", NamespaceGrantArgs(namespace="shop", targets=[Access(target=orders, methods=("GET",))]))
    mocks = RecordingMocks()
    with pytest.raises(ValueError, match="grant of orders to namespace 'shop': methods and paths need an HTTP port, and "
                                         "orders has none"):
        run_on_mocks(program, mocks)
    assert not [resource for resource in mocks.registered if "shop" in resource.name]


def test_access_logging_can_be_turned_off():
    program = run_on_mocks(lambda: EgressGateway("egress", EgressGatewayArgs(access_logging=False)))
    assert objects(program, "Telemetry") == {}
    assert set(objects(program, "Gateway")) == {"istio-egress/waypoint"}


def two_clusters() -> None:
    """Two providers, one stack each, every name alike: what a program managing two clusters does."""
    for cluster in ("cluster-a", "cluster-b"):
        provider = pulumi.ProviderResource("kubernetes", cluster)
        gateway = EgressGateway(f"{cluster}/egress", opts=pulumi.ResourceOptions(providers=[provider]))
        orders = ExternalDatabase(f"{cluster}/orders", ExternalDatabaseArgs(
            waypoint=gateway.waypoint, address="10.0.0.5", service_name="orders"), pulumi.ResourceOptions(providers=[provider]))
        NamespaceGrant(f"{cluster}/shop", NamespaceGrantArgs(namespace="shop", targets=[orders]),
                       pulumi.ResourceOptions(providers=[provider]))


def test_two_instances_in_one_program_register_unique_urns_each_with_its_own_provider():
    run = run_on_mocks(two_clusters)
    assert len(run.urns) == len(set(run.urns))
    leaves = [resource.name for resource in run.resources if resource.is_kubernetes]
    for name in leaves:
        assert run.providers[name].split("::")[3].startswith(name.split("/", 1)[0]), name


def test_the_mock_engine_fails_on_a_duplicate_urn_as_the_engine_does():
    def clash():
        EgressGateway("egress")
        EgressGateway("egress", EgressGatewayArgs(namespace="other"))
    with pytest.raises(DuplicateUrn, match="Duplicate resource URN"):
        run_on_mocks(clash)


def test_depends_on_given_to_a_component_reaches_every_leaf():
    def program():
        istio = pulumi.CustomResource("test:index:IstioInstall", "istio")
        options = pulumi.ResourceOptions(depends_on=[istio])
        gateway = EgressGateway("egress", EgressGatewayArgs(create_namespace=False), options)
        orders = ExternalDatabase("orders", ExternalDatabaseArgs(waypoint=gateway.waypoint, stand_in_namespace="db"), options)
        NamespaceGrant("shop", NamespaceGrantArgs(namespace="shop", targets=[orders], test_client=True,
                                                  service_accounts=["app"]), options)
    run = run_on_mocks(program, RecordingMocks({"orders": {"ip": "198.51.100.7"}}))
    leaves = [resource.name for resource in run.resources if resource.is_kubernetes or resource.type.startswith("random:")]
    assert len(leaves) > 10
    assert all("istio" in run.dependencies[name] for name in leaves), [n for n in leaves if "istio" not in run.dependencies[n]]


def test_providers_given_to_a_component_reach_every_leaf():
    def program():
        provider = pulumi.ProviderResource("kubernetes", "cluster-a")
        EgressGateway("egress", EgressGatewayArgs(create_namespace=False), pulumi.ResourceOptions(providers=[provider]))
    run = run_on_mocks(program)
    leaves = [resource.name for resource in run.resources if resource.is_kubernetes]
    assert leaves and all("::cluster-a::" in run.providers[name] for name in leaves), run.providers


def test_a_label_patch_is_retained_on_delete_so_revoking_never_unenrols_the_namespace():
    def program():
        gateway = EgressGateway("egress", EgressGatewayArgs(create_namespace=False))
        orders = ExternalDatabase("orders", ExternalDatabaseArgs(waypoint=gateway.waypoint, address="10.0.0.5"))
        NamespaceGrant("shop", NamespaceGrantArgs(namespace="shop", targets=[orders]))
    run = run_on_mocks(program)
    patches = [name for name, retained in run.retained.items() if name.endswith("/namespace-labels")]
    assert sorted(patches) == ["egress/namespace-labels", "shop/namespace-labels"]
    assert all(run.retained[name] for name in patches)
    assert not run.retained["egress/waypoint"]


def test_the_stand_ins_load_balancer_waits_only_as_long_as_configured():
    def program():
        gateway = EgressGateway("egress")
        ExternalDatabase("orders", ExternalDatabaseArgs(waypoint=gateway.waypoint, stand_in_namespace="db",
                                                        load_balancer_timeout="90s"))
    run = run_on_mocks(program, RecordingMocks({"orders": {"ip": "198.51.100.7"}}))
    assert run.timeouts["orders/load-balancer"] == {"create": "90s", "update": "90s"}
