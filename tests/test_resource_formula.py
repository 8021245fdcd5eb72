"""The number of resources the program records is an exact formula of the stack config.

Everything the mock engine records counts: registrations and reads (`Resource.get`). For a stack
of databases only (what `make bench` generates), with the symbols of `tools/bench/formula.py`:

    registrations = 6 + [S>0]·o_d + 4·D + (4 + i)·S + (2 + t + e)·N + Aₒ + G
    reads         = 7 + (1 − oₑ) + [S>0]·(1 − o_d) + Nᵤ + t·Nᵤₐ

Where each term comes from (components/, stack/control.py):

- 6: EgressAccessControl; MeshPrerequisites; EgressGateway, its waypoint Gateway, its Telemetry
  and its Namespace (owned) or NamespacePatch (not owned).
- 7 reads: the five CRDs a stack of databases uses, the `istio-waypoint` GatewayClass, the
  ztunnel DaemonSet; 1 − oₑ: the egress namespace, read when the stack does not own it.
- [S>0]: the stand-ins' namespace when there is a stand-in, created (o_d) or read.
- 4 per database: ExternalDatabase, ExternalService, ServiceEntry, allow-nothing policy.
- 4 + i per stand-in: RandomPassword, Secret, Deployment, LoadBalancer Service, and with
  `databaseIngressPolicy` its NetworkPolicy.
- 2 + t + e per granted namespace: NamespaceGrant and its Namespace or NamespacePatch; the test
  client Pod; the NetworkPolicy denying direct egress when `clientEgressPolicy` has an IPv4
  database to deny. Nᵤ reads: a namespace not owned is read before its label is patched.
- Aₒ: the service accounts of owned namespaces are created; t·Nᵤₐ: in a namespace not owned the
  first one is read, with test clients, because the client runs as it.
- G: one AuthorizationPolicy per grant.

`services` add their own terms, counted per type by `expected_resources`: an ExternalService,
ServiceEntry and allow-nothing policy each, a DestinationRule with tlsOrigination, an HTTPRoute
with requestHeaders, a CRD read for each of those two kinds when some service needs it, and one
policy per namespace and service however many accesses it lists.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from components.values import is_ipv4
from stack import StackConfig, parse_config
from tools.bench.formula import StackShape, reads, registrations, resources
from tools.bench.topology import Topology
from tools.mock_engine import RecordingMocks, run_program

from .support import DEV_LOAD_BALANCERS, ROOT, stack_values

COMPONENT = "ambient-egress:index:"
K8S = "kubernetes:"
CREATED, READ = False, True


def expected_resources(config: StackConfig) -> Counter[tuple[str, bool]]:
    """Every resource type the program records, created or read, and its count, from the config alone."""
    stand_ins = sum(1 for database in config.databases if database.is_stand_in)
    databases, services = len(config.databases), len(config.services)
    owned = [grant for grant in config.grants if grant.create_namespace]
    not_owned = [grant for grant in config.grants if not grant.create_namespace]
    namespaces = len(config.grants)
    protection = config.bypass_protection
    addresses = [database.address for database in config.databases if database.address is not None]
    ipv4 = any(is_ipv4(address) for address in [*addresses, *(service.host for service in config.services)])
    egress_policies = namespaces if protection.client_egress_policy and ipv4 else 0
    tls = sum(1 for service in config.services if service.tls_origination)
    headers = sum(1 for service in config.services if service.request_headers)
    policies = sum(len({*grant.databases, *(access.name for access in grant.services)}) for grant in config.grants)
    egress_owned, database_namespace = config.create_egress_namespace, stand_ins > 0
    counts: Counter[tuple[str, bool]] = Counter({
        (f"{COMPONENT}EgressAccessControl", CREATED): 1,
        (f"{COMPONENT}MeshPrerequisites", CREATED): 1,
        (f"{K8S}apiextensions.k8s.io/v1:CustomResourceDefinition", READ): 5 + (tls > 0) + (headers > 0),
        (f"{K8S}gateway.networking.k8s.io/v1:GatewayClass", READ): 1,
        (f"{K8S}apps/v1:DaemonSet", READ): 1,
        (f"{COMPONENT}EgressGateway", CREATED): 1,
        (f"{K8S}gateway.networking.k8s.io/v1:Gateway", CREATED): 1,
        (f"{K8S}telemetry.istio.io/v1:Telemetry", CREATED): 1,
        (f"{K8S}core/v1:Namespace", CREATED):
            egress_owned + (database_namespace and config.create_database_namespace) + len(owned),
        (f"{K8S}core/v1:Namespace", READ):
            (not egress_owned) + (database_namespace and not config.create_database_namespace) + len(not_owned),
        (f"{K8S}core/v1:NamespacePatch", CREATED): (not egress_owned) + len(not_owned),
        (f"{COMPONENT}ExternalDatabase", CREATED): databases,
        (f"{COMPONENT}ExternalService", CREATED): databases + services,
        (f"{K8S}networking.istio.io/v1:ServiceEntry", CREATED): databases + services,
        (f"{K8S}security.istio.io/v1:AuthorizationPolicy", CREATED): databases + services + policies,
        ("random:index/randomPassword:RandomPassword", CREATED): stand_ins,
        (f"{K8S}core/v1:Secret", CREATED): stand_ins,
        (f"{K8S}apps/v1:Deployment", CREATED): stand_ins,
        (f"{K8S}core/v1:Service", CREATED): stand_ins,
        (f"{K8S}networking.k8s.io/v1:NetworkPolicy", CREATED):
            (stand_ins if protection.database_ingress_policy else 0) + egress_policies,
        (f"{COMPONENT}NamespaceGrant", CREATED): namespaces,
        (f"{K8S}core/v1:ServiceAccount", CREATED): sum(len(grant.identities()) for grant in owned),
        (f"{K8S}core/v1:ServiceAccount", READ):
            sum(1 for grant in not_owned if grant.identities()) if config.test_clients else 0,
        (f"{K8S}core/v1:Pod", CREATED): namespaces if config.test_clients else 0,
        (f"{K8S}networking.istio.io/v1:DestinationRule", CREATED): tls,
        (f"{K8S}gateway.networking.k8s.io/v1:HTTPRoute", CREATED): headers,
    })
    return +counts  # drop zero counts


def shape_of(config: StackConfig) -> StackShape:
    """The formula's arguments for a stack of databases only."""
    assert not config.services, "the closed form covers databases only"
    owned = [grant for grant in config.grants if grant.create_namespace]
    not_owned = [grant for grant in config.grants if not grant.create_namespace]
    protection = config.bypass_protection
    return StackShape(
        stand_ins=sum(1 for database in config.databases if database.is_stand_in),
        existing=sum(1 for database in config.databases if not database.is_stand_in),
        owned_namespaces=len(owned), unowned_namespaces=len(not_owned),
        grants=sum(len(grant.databases) for grant in config.grants),
        owned_service_accounts=sum(len(grant.identities()) for grant in owned),
        unowned_namespaces_with_service_accounts=sum(1 for grant in not_owned if grant.identities()),
        test_clients=config.test_clients, database_ingress_policy=protection.database_ingress_policy,
        client_egress_policy=protection.client_egress_policy,
        ipv4_database=any(is_ipv4(database.address) for database in config.databases if database.address),
        egress_namespace_owned=config.create_egress_namespace,
        database_namespace_owned=config.create_database_namespace,
    )


def recorded(config: dict[str, Any], load_balancers: dict[str, dict[str, str]]) -> Counter[tuple[str, bool]]:
    run = run_program(config, RecordingMocks(load_balancers))
    return Counter((resource.type, resource.read) for resource in run.resources)


def assert_follows_the_formula(config: dict[str, Any], load_balancers: dict[str, dict[str, str]]) -> StackShape:
    counts = recorded(config, load_balancers)
    parsed = parse_config(config)
    assert counts == expected_resources(parsed)
    shape = shape_of(parsed)
    assert sum(count for (_, read), count in counts.items() if not read) == registrations(shape)
    assert sum(count for (_, read), count in counts.items() if read) == reads(shape)
    assert counts.total() == resources(shape)
    return shape


def random_stack(seed: int) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """A small random stack of databases: stand-ins and existing databases (IPv4 or DNS), owned and
    not-owned namespaces, service accounts, and every flag the count depends on at random."""
    rng = random.Random(seed)
    databases: list[dict[str, Any]] = []
    for index in range(rng.randint(1, 4)):
        database: dict[str, Any] = {"name": f"db-{index}"}
        kind = rng.choice(("stand-in", "ipv4", "dns"))
        if kind == "ipv4":
            database["address"] = f"192.0.2.{index + 1}"
        elif kind == "dns":
            database["address"] = f"db-{index}.example.com"
        databases.append(database)
    grants = []
    for index in range(rng.randint(1, 3)):
        grant: dict[str, Any] = {"namespace": f"team-{index}",
                                 "databases": rng.sample([database["name"] for database in databases],
                                                         rng.randint(1, len(databases)))}
        if rng.random() < 0.5:
            grant["createNamespace"] = True
        if rng.random() < 0.5:
            grant["serviceAccounts"] = [f"sa-{account}" for account in range(rng.randint(1, 2))]
        grants.append(grant)
    config = {
        "databases": databases, "grants": grants, "testClients": rng.random() < 0.5,
        "createEgressNamespace": rng.random() < 0.5, "createDatabaseNamespace": rng.random() < 0.5,
        "bypassProtection": {"databaseIngressPolicy": rng.random() < 0.5, "clientEgressPolicy": rng.random() < 0.5},
    }
    load_balancers = {database["name"]: {"ip": f"198.18.0.{index + 1}"}
                      for index, database in enumerate(databases) if "address" not in database}
    return config, load_balancers


@pytest.mark.parametrize("seed", range(1, 9))
def test_a_random_stack_records_what_the_formula_counts(seed: int) -> None:
    config, load_balancers = random_stack(seed)
    assert_follows_the_formula(config, load_balancers)


def test_the_random_stacks_cover_every_term() -> None:
    """Each symbol of the formula takes more than one value across the seeds, so none goes unchecked."""
    shapes = [shape_of(parse_config(random_stack(seed)[0])) for seed in range(1, 9)]
    for field in ("test_clients", "database_ingress_policy", "client_egress_policies", "egress_namespace_owned",
                  "database_namespace_owned"):
        assert {getattr(shape, field) for shape in shapes} == {False, True}, field
    for field in ("stand_ins", "existing", "owned_namespaces", "unowned_namespaces", "owned_service_accounts"):
        assert len({getattr(shape, field) for shape in shapes}) > 1, field
    assert any(shape.test_clients and shape.unowned_namespaces_with_service_accounts for shape in shapes)


@pytest.mark.parametrize("topology", [Topology(4, 3, 6, externals=1), Topology(5, 4, 12, externals=5),
                                      Topology(3, 5, 3), Topology(600, 2, 2, externals=600)],
                         ids=lambda topology: topology.label)
def test_the_generated_benchmark_stacks_follow_the_formula(topology: Topology) -> None:
    # 600 existing databases run out of documentation IPv4 addresses and get DNS names.
    shape = assert_follows_the_formula(topology.config(), topology.load_balancers())
    assert topology.shape() == shape
    assert shape.owned_namespaces == 0, "a platform grants its teams' namespaces, which the stack does not own"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_example_stacks_follow_the_formula(stack: str) -> None:
    assert_follows_the_formula(stack_values(stack), DEV_LOAD_BALANCERS)


def test_services_add_their_own_terms() -> None:
    config = {
        "databases": [{"name": "orders", "address": "192.0.2.10"}],
        "services": [
            {"name": "httpbin", "host": "httpbin.org", "ports": [{"number": 80, "protocol": "HTTP", "name": "http"}],
             "tlsOrigination": True, "requestHeaders": {"x-added": "yes"}},
            {"name": "ledger", "host": "198.51.100.7", "ports": [{"number": 443, "protocol": "TLS", "name": "tls"}]},
        ],
        "grants": [
            # Two accesses to one service share a policy; the access's service account is created.
            {"namespace": "apps", "createNamespace": True, "databases": ["orders"],
             "services": [{"name": "httpbin", "serviceAccounts": ["admin"]},
                          {"name": "httpbin", "methods": ["GET"], "paths": ["/get"]}, "ledger"]},
            {"namespace": "jobs", "services": ["ledger"], "serviceAccounts": ["batch"]},
        ],
        "bypassProtection": {"clientEgressPolicy": True},
        "testClients": True,
    }
    counts = recorded(config, {})
    assert counts == expected_resources(parse_config(config))
    # An allow-nothing policy per target (3) and a policy per namespace and target (apps: 3, jobs: 1).
    assert counts[(f"{K8S}security.istio.io/v1:AuthorizationPolicy", CREATED)] == 3 + 4
    # The DestinationRule and HTTPRoute CRDs are read too.
    assert counts[(f"{K8S}apiextensions.k8s.io/v1:CustomResourceDefinition", READ)] == 7


def test_the_headline_size() -> None:
    shape = Topology(1000, 1000, 10000).shape()
    assert (registrations(shape), reads(shape), resources(shape)) == (21_007, 1_007, 22_014)


def test_the_formula_module_loads_without_pulumi_or_the_rest_of_the_benchmark() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, tools.bench.formula; print(' '.join(sorted(sys.modules)))"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert "tools.bench.formula" in loaded
    assert [name for name in loaded if name.split(".")[0] in ("pulumi", "pulumi_kubernetes", "stack", "components")
            or (name.startswith("tools.bench.") and name != "tools.bench.formula")] == []
