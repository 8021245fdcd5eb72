"""The dev stack (the reference design) and its variations, run on Pulumi's mock engine."""

from __future__ import annotations

import json
import logging

import pytest

from components import manifests
from tools.mock_engine import MOCK_PASSWORD, SECRET_SIGNATURE, SECRET_SIGNATURE_KEY, Cluster, is_secret, resolved

from .support import dev_values, objects, run

GRANT_POLICY = "AuthorizationPolicy"


@pytest.fixture(scope="module")
def dev():
    return run()


def test_dev_stack_registers_the_reference_design_inventory(dev):
    inventory = {kind: sorted(objects(dev, kind)) for kind in
                 ("Namespace", "Gateway", "Telemetry", "ServiceEntry", "AuthorizationPolicy",
                  "Deployment", "Service", "Secret", "Pod", "NetworkPolicy", "ValidatingAdmissionPolicy",
                  "ValidatingAdmissionPolicyBinding")}
    assert inventory == {
        "Namespace": ["db", "istio-egress", "rds-demo-1", "rds-demo-2"],
        "Gateway": ["istio-egress/waypoint"],
        "Telemetry": ["istio-egress/waypoint-access-logs"],
        "ServiceEntry": ["istio-egress/postgres-1", "istio-egress/postgres-2"],
        "AuthorizationPolicy": [
            "istio-egress/allow-postgres-1-from-rds-demo-1", "istio-egress/allow-postgres-2-from-rds-demo-2",
            "istio-egress/postgres-1-allow-nothing", "istio-egress/postgres-2-allow-nothing",
        ],
        "Deployment": ["db/postgres-1", "db/postgres-2"],
        "Service": ["db/postgres-1", "db/postgres-2"],
        "Secret": ["db/postgres-1-credentials", "db/postgres-2-credentials"],
        "Pod": ["rds-demo-1/client", "rds-demo-2/client"],
        # Beyond the reference design: what closes the routes around the waypoint.
        "NetworkPolicy": ["db/postgres-1-from-egress-waypoint", "db/postgres-2-from-egress-waypoint",
                          "rds-demo-1/egress-lockdown", "rds-demo-2/egress-lockdown"],
        "ValidatingAdmissionPolicy": ["ambient-egress.istio-egress.serviceentry-namespaces"],
        "ValidatingAdmissionPolicyBinding": ["ambient-egress.istio-egress.serviceentry-namespaces"],
    }


def test_client_and_egress_namespaces_are_ambient_and_the_database_namespace_is_not(dev):
    labels = {name: ns["metadata"]["labels"].get("istio.io/dataplane-mode") for name, ns in objects(dev, "Namespace").items()}
    assert labels == {"db": None, "istio-egress": "ambient", "rds-demo-1": "ambient", "rds-demo-2": "ambient"}


def test_waypoint_is_an_istio_waypoint_gateway_on_hbone_15008_binding_only_its_own_namespace(dev):
    # The reference design admits every namespace; every ServiceEntry here sits beside the waypoint,
    # so Same binds them all and no tenant's ServiceEntry.
    gateway = objects(dev, "Gateway")["istio-egress/waypoint"]
    assert gateway["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert gateway["spec"]["gatewayClassName"] == "istio-waypoint"
    assert gateway["spec"]["listeners"] == [
        {"name": "mesh", "port": 15008, "protocol": "HBONE", "allowedRoutes": {"namespaces": {"from": "Same"}}}
    ]


def test_access_logging_targets_the_waypoint_gateway(dev):
    telemetry = objects(dev, "Telemetry")["istio-egress/waypoint-access-logs"]
    assert telemetry["spec"]["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "waypoint"}]
    assert telemetry["spec"]["accessLogging"] == [{"providers": [{"name": "envoy"}]}]


def test_service_entry_host_is_the_load_balancer_ip_on_nip_io(dev):
    entry = objects(dev, "ServiceEntry")["istio-egress/postgres-1"]
    assert entry["spec"]["hosts"] == ["203.0.113.10.nip.io"]
    assert entry["spec"]["addresses"] == ["203.0.113.10"]


def test_service_entry_is_external_tcp_bound_to_the_waypoint_and_passed_through_to_its_pinned_ip(dev):
    # From Istio 1.28 the waypoint dials the pinned IP itself: no lookup of <ip>.nip.io in public
    # DNS on the data path (the reference design's `resolution: DNS`).
    entry = objects(dev, "ServiceEntry")["istio-egress/postgres-2"]
    assert entry["metadata"]["labels"]["istio.io/use-waypoint"] == "waypoint"
    assert "istio.io/use-waypoint-namespace" not in entry["metadata"]["labels"]
    assert entry["spec"]["location"] == "MESH_EXTERNAL"
    assert (entry["spec"]["resolution"], entry["spec"]["addresses"]) == ("NONE", ["203.0.113.11"])
    assert entry["spec"]["hosts"] == ["203.0.113.11.nip.io"]
    assert entry["spec"]["ports"] == [{"number": 5432, "name": "tcp-postgres", "protocol": "TCP"}]


@pytest.mark.parametrize(("version", "resolution"), [("1.27", "DNS"), ("1.28", "NONE")])
def test_ip_passthrough_needs_istio_1_28_and_older_versions_resolve_the_host(version, resolution):
    program = run(dev_values(istio={"version": version}), cluster=Cluster(istio_version=f"{version}.0"))
    assert {entry["spec"]["resolution"] for entry in objects(program, "ServiceEntry").values()} == {resolution}


def test_a_dns_named_database_keeps_dns_resolution_and_no_pin():
    program = run(dev_values(databases=[{"name": "orders", "address": "orders.db.example.com"}], grants=[]), {})
    entry = objects(program, "ServiceEntry")["istio-egress/orders"]
    assert (entry["spec"]["resolution"], entry["spec"].get("addresses")) == ("DNS", None)


def test_load_balancer_reporting_a_hostname_gives_that_hostname_as_host_without_addresses():
    program = run(load_balancers={"postgres-1": {"hostname": "pg1.elb.example.com"}, "postgres-2": {"ip": "203.0.113.11"}})
    entry = objects(program, "ServiceEntry")["istio-egress/postgres-1"]
    assert entry["spec"]["hosts"] == ["pg1.elb.example.com"]
    assert "addresses" not in entry["spec"]


def test_load_balancer_without_an_address_fails_the_run_with_the_service_named():
    with pytest.raises(Exception, match=r"LoadBalancer Service db/postgres-1 reported no ingress address"):
        run(load_balancers={"postgres-2": {"ip": "203.0.113.11"}})


@pytest.mark.parametrize(("address", "host", "addresses"), [
    ("10.20.30.40", "10.20.30.40.nip.io", ["10.20.30.40"]),
    ("orders.db.example.com", "orders.db.example.com", None),
])
def test_existing_database_address_becomes_the_host_and_no_stand_in_is_created(address, host, addresses):
    program = run(dev_values(
        databases=[{"name": "orders", "address": address, "port": 6432}],
        grants=[{"namespace": "shop", "databases": ["orders"]}],
    ), load_balancers={})
    entry = objects(program, "ServiceEntry")["istio-egress/orders"]
    assert entry["spec"]["hosts"] == [host]
    assert entry["spec"].get("addresses") == addresses
    assert entry["spec"]["ports"][0]["number"] == 6432
    for kind in ("Deployment", "Service", "Secret"):
        assert objects(program, kind) == {}, kind
    assert not program.of_type("random:index/randomPassword:RandomPassword")
    assert "db" not in objects(program, "Namespace")


def test_stand_in_runs_official_postgres_with_a_pg_isready_probe_and_resource_requests(dev):
    deployment = objects(dev, "Deployment")["db/postgres-1"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].split(":")[0] == "postgres"
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert container["envFrom"] == [{"secretRef": {"name": "postgres-1-credentials"}}]


def test_stand_in_is_behind_a_load_balancer_on_the_database_port(dev):
    service = objects(dev, "Service")["db/postgres-1"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["ports"][0]["port"] == 5432
    pod_labels = objects(dev, "Deployment")["db/postgres-1"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_stand_in_password_is_a_secret_input_of_the_kubernetes_secret(dev):
    secret = next(r for r in dev.of_type("kubernetes:core/v1:Secret") if r.name == "egress/database/postgres-1/credentials")
    assert MOCK_PASSWORD not in json.dumps(secret.manifest())
    assert secret.manifest()["stringData"]["POSTGRES_PASSWORD"].startswith("<secret")


def test_stand_in_password_is_exported_only_as_a_secret(dev):
    assert is_secret(dev.outputs["credentials"])
    plain_exports = {key: value for key, value in dev.outputs.items() if key != "credentials"}
    assert not any(is_secret(value) for value in plain_exports.values())
    assert MOCK_PASSWORD not in json.dumps(resolved(plain_exports))


def test_exports_hosts_ports_egress_waypoint_and_the_intended_matrix(dev):
    exports = resolved({key: value for key, value in dev.outputs.items() if key != "credentials"})
    assert exports == {
        "egressNamespace": "istio-egress",
        "waypoint": "waypoint",
        "istioVersion": "1.30.3",
        "databases": {"postgres-1": {"host": "203.0.113.10.nip.io", "port": 5432},
                      "postgres-2": {"host": "203.0.113.11.nip.io", "port": 5432}},
        "services": {},
        "accessMatrix": {"rds-demo-1": {"postgres-1": "ALLOW"}, "rds-demo-2": {"postgres-2": "ALLOW"}},
        "targets": [
            {"name": f"postgres-{n}", "kind": "database", "serviceEntry": f"istio-egress/postgres-{n}",
             "hosts": [f"203.0.113.1{n - 1}.nip.io"], "addresses": [f"203.0.113.1{n - 1}"],
             "ports": [{"number": 5432, "protocol": "TCP", "name": "tcp-postgres"}]}
            for n in (1, 2)
        ],
        "sampleRequests": [],
        "egressLockdown": {"rds-demo-1": {"enabled": True, "allowCidrs": []}, "rds-demo-2": {"enabled": True, "allowCidrs": []}},
    }


def _granted_pairs(program) -> set[tuple[str, str, str]]:
    pairs = set()
    for policy in objects(program, GRANT_POLICY).values():
        for rule in policy["spec"].get("rules", []):
            for source in rule["from"]:
                for namespace in source["source"].get("namespaces", []):
                    for operation in rule["to"]:
                        pairs.add((namespace, policy["spec"]["targetRefs"][0]["name"], *operation["operation"]["ports"]))
    return pairs


def test_policies_grant_exactly_the_declared_namespace_database_pairs(dev):
    assert _granted_pairs(dev) == {("rds-demo-1", "postgres-1", "5432"), ("rds-demo-2", "postgres-2", "5432")}


def test_grant_policy_targets_its_service_entry_from_its_namespace(dev):
    policy = objects(dev, GRANT_POLICY)["istio-egress/allow-postgres-1-from-rds-demo-1"]
    assert policy["apiVersion"] == "security.istio.io/v1"
    assert policy["spec"]["action"] == "ALLOW"
    assert policy["spec"]["targetRefs"] == [{"group": "networking.istio.io", "kind": "ServiceEntry", "name": "postgres-1"}]
    assert policy["spec"]["rules"] == [
        {"from": [{"source": {"namespaces": ["rds-demo-1"]}}], "to": [{"operation": {"ports": ["5432"]}}]}
    ]


def test_database_nobody_is_granted_has_only_the_allow_nothing_baseline():
    config = dev_values(databases=[{"name": "postgres-1"}, {"name": "postgres-2"}, {"name": "reports", "address": "10.1.2.3"}])
    policies = [p for p in objects(run(config), GRANT_POLICY).values() if p["spec"]["targetRefs"][0]["name"] == "reports"]
    assert [p["metadata"]["name"] for p in policies] == ["reports-allow-nothing"]
    assert policies[0]["spec"] == {"targetRefs": [{"group": "networking.istio.io", "kind": "ServiceEntry", "name": "reports"}],
                                   "action": "ALLOW"}


def test_every_service_entry_has_an_allow_nothing_baseline_in_its_namespace(dev):
    for key in objects(dev, "ServiceEntry"):
        baseline = objects(dev, GRANT_POLICY)[f"{key}-allow-nothing"]
        assert "rules" not in baseline["spec"], key


DATABASE = "egress/database/postgres-1"
ENTRY = f"{DATABASE}/external-service"
PREREQUISITES = {"egress/prerequisites/ztunnel: install Istio 1.24+ in ambient mode",
                 "egress/prerequisites/gatewayclass/istio-waypoint: install Istio 1.24+ in ambient mode, which makes it",
                 "egress/prerequisites/crd/serviceentries.networking.istio.io: install Istio 1.24+ in ambient mode"}


@pytest.mark.parametrize(("resource", "waits_for"), [
    # Nothing is created before the cluster is known to have what the stack needs.
    ("egress/egress-gateway/namespace", PREREQUISITES),
    ("egress/database-namespace", PREREQUISITES),
    ("egress/grant/rds-demo-1/namespace", PREREQUISITES),
    (f"{DATABASE}/password", PREREQUISITES),
    # The waypoint is Programmed before any ServiceEntry binds to it: until then ztunnel would
    # send the traffic straight out.
    ("egress/egress-gateway/waypoint", {"egress/egress-gateway/namespace"}),
    # Closed from the first moment: the baseline exists before its ServiceEntry, and on destroy
    # the ServiceEntry goes first; grants come after the ServiceEntry and go before it.
    (f"{ENTRY}/service-entry", {f"{ENTRY}/allow-nothing", "egress/egress-gateway/waypoint"}),
    ("egress/grant/rds-demo-1/policy/postgres-1", {f"{ENTRY}/service-entry", "egress/grant/rds-demo-1/namespace"}),
    # The stand-in is fenced before it listens.
    (f"{DATABASE}/deployment", {f"{DATABASE}/ingress-policy", f"{DATABASE}/credentials", "egress/database-namespace"}),
    (f"{DATABASE}/load-balancer", {f"{DATABASE}/ingress-policy", "egress/database-namespace"}),
    (f"{DATABASE}/ingress-policy", {"egress/database-namespace"}),
    ("egress/grant/rds-demo-1/client", {"egress/grant/rds-demo-1/namespace"}),
])
def test_dependencies_order_creation_and_teardown_safely(dev, resource, waits_for):
    assert waits_for <= dev.dependencies[resource], sorted(dev.dependencies[resource])


def test_the_waypoint_is_awaited_until_programmed_with_an_address_and_a_timeout(dev):
    annotations = objects(dev, "Gateway")["istio-egress/waypoint"]["metadata"]["annotations"]
    assert json.loads(annotations["pulumi.com/waitFor"]) == ["condition=Programmed", "jsonpath={.status.addresses[0].value}"]
    assert int(annotations["pulumi.com/timeoutSeconds"]) == manifests.WAYPOINT_READY_TIMEOUT_SECONDS


def test_test_clients_carry_pg_isready_and_are_left_out_by_default(dev):
    pod = objects(dev, "Pod")["rds-demo-1/client"]
    assert pod["spec"]["containers"][0]["image"].startswith("postgres:")
    assert objects(run(dev_values(testClients=False)), "Pod") == {}


def test_adding_a_grant_touches_only_that_grants_resources(dev):
    new_grant = {"namespace": "rds-demo-3", "databases": ["postgres-1", "postgres-2"]}
    extended = run(dev_values(grants=[*dev_values()["grants"], new_grant]))
    before = {(r.type, r.name): r.manifest() for r in dev.resources}
    after = {(r.type, r.name): r.manifest() for r in extended.resources}
    assert all(after[key] == manifest for key, manifest in before.items())
    added = sorted(name for (_, name) in set(after) - set(before))
    assert added == ["egress/grant/rds-demo-3", "egress/grant/rds-demo-3/client", "egress/grant/rds-demo-3/egress-lockdown",
                     "egress/grant/rds-demo-3/existing-namespace: create it, or let the grant own it",
                     "egress/grant/rds-demo-3/namespace-labels", "egress/grant/rds-demo-3/policy/postgres-1",
                     "egress/grant/rds-demo-3/policy/postgres-2"]


@pytest.mark.parametrize("owned", [True, False])
def test_service_account_grant_allows_principals_instead_of_the_namespace(owned):
    config = dev_values(trustDomain="mesh.example", grants=[
        {"namespace": "rds-demo-1", "createNamespace": owned, "databases": ["postgres-1"], "serviceAccounts": ["app"]}])
    program = run(config)
    policy = objects(program, GRANT_POLICY)["istio-egress/allow-postgres-1-from-rds-demo-1"]
    assert policy["spec"]["rules"][0]["from"] == [{"source": {"principals": ["mesh.example/ns/rds-demo-1/sa/app"]}}]
    assert objects(program, "Pod")["rds-demo-1/client"]["spec"]["serviceAccountName"] == "app"


def test_custom_egress_namespace_and_waypoint_name_flow_into_bindings():
    program = run(dev_values(egressNamespace="egress", waypointName="egress-gateway"))
    entry = objects(program, "ServiceEntry")["egress/postgres-1"]
    assert entry["metadata"]["labels"]["istio.io/use-waypoint"] == "egress-gateway"
    assert "egress/egress-gateway" in objects(program, "Gateway")
    ingress = objects(program, "NetworkPolicy")["db/postgres-1-from-egress-waypoint"]["spec"]["ingress"][0]["from"][0]
    assert ingress == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "egress"}},
                       "podSelector": {"matchLabels": {manifests.GATEWAY_NAME_LABEL: "egress-gateway"}}}


def test_every_resource_is_named_from_its_component_under_the_stack_component(dev):
    components = {urn.rsplit("::", 1)[1] for urn in dev.urns if "ambient-egress:index:" in urn.rsplit("::", 1)[0].split("$")[-1]}
    assert components == {"egress", "egress/prerequisites", "egress/egress-gateway", "egress/service-entry-admission",
                          "egress/database/postgres-1",
                          "egress/database/postgres-1/external-service", "egress/database/postgres-2",
                          "egress/database/postgres-2/external-service", "egress/grant/rds-demo-1",
                          "egress/grant/rds-demo-2"}
    for urn in dev.urns:
        qualified_type, name = urn.split("::")[2], urn.rsplit("::", 1)[1]
        assert qualified_type.startswith("pulumi:pulumi:Stack$ambient-egress:index:EgressAccessControl"), urn
        assert name == "egress" or any(name.startswith(f"{component}/") for component in components), urn


def _plain_occurrences(value, needle: str) -> int:
    """How often `needle` appears outside a Pulumi secret in a registered resource's inputs."""
    if isinstance(value, dict):
        if value.get(SECRET_SIGNATURE_KEY) == SECRET_SIGNATURE:
            return 0
        return sum(_plain_occurrences(item, needle) for item in value.values())
    if isinstance(value, list):
        return sum(_plain_occurrences(item, needle) for item in value)
    return int(isinstance(value, str) and needle in value)


def test_password_reaches_the_engine_only_as_a_secret(dev):
    assert sum(_plain_occurrences(resource.inputs, MOCK_PASSWORD) for resource in dev.resources) == 0
    secret_inputs = [r.inputs["stringData"] for r in dev.of_type("kubernetes:core/v1:Secret")]
    assert all(inputs[SECRET_SIGNATURE_KEY] == SECRET_SIGNATURE for inputs in secret_inputs)


def test_password_never_appears_in_the_programs_logs(caplog):
    with caplog.at_level(logging.DEBUG):
        run()
    assert caplog.records, "the run logged nothing, so this test would prove nothing"
    assert not any(MOCK_PASSWORD in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(("database", "port_name"), [
    ({"name": "ledger", "address": "10.0.0.7", "port": 3306}, "tcp-mysql"),
    ({"name": "ledger", "address": "10.0.0.7", "port": 5432}, "tcp-postgres"),
    ({"name": "ledger", "address": "10.0.0.7", "port": 7000}, "tcp-7000"),
    # A stand-in is PostgreSQL whatever port it listens on.
    ({"name": "ledger", "port": 3306}, "tcp-postgres"),
])
def test_a_databases_service_entry_port_is_named_after_its_engine(database, port_name):
    program = run(dev_values(databases=[database], grants=[]), load_balancers={"ledger": {"ip": "203.0.113.20"}})
    assert objects(program, "ServiceEntry")["istio-egress/ledger"]["spec"]["ports"][0]["name"] == port_name
