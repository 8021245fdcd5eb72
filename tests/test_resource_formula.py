"""The number of resources the program registers is an exact formula of the stack config.

For a stack of databases only (what `make bench` generates):

    R = 5 + [S>0] + 4·D + (4 + i)·S + (2 + t + e)·N + A + G

where D = S + E databases (S stand-ins, E existing databases with an `address`), N grant
namespaces, G grants (namespace, database pairs: one AuthorizationPolicy each), A service accounts
(distinct per namespace), i = bypassProtection.databaseIngressPolicy (default 1),
t = testClients (default 0), and e = 1 when bypassProtection.clientEgressPolicy is on and at least
one database or service has an IPv4 address (default 0). D=1,000 stand-ins, N=1,000 and G=10,000
register 21,006 resources.

Where each term comes from (components/):

- 5: EgressAccessControl; EgressGateway with its Namespace, waypoint Gateway and Telemetry.
- [S>0]: the stand-ins' Namespace, made only when there is a stand-in.
- 4 per database: ExternalDatabase, its ExternalService, the ServiceEntry and the allow-nothing
  AuthorizationPolicy.
- 4 + i per stand-in: RandomPassword, Secret, Deployment, LoadBalancer Service and, with i, the
  NetworkPolicy that admits only the waypoint.
- 2 + t + e per namespace: NamespaceGrant and its Namespace; the test-client Pod; the NetworkPolicy
  denying direct egress to the IPv4-addressed databases.
- 1 per service account, 1 per grant.

`services` add 3 each (ExternalService, ServiceEntry, allow-nothing policy), plus a DestinationRule
with tlsOrigination and an HTTPRoute with requestHeaders; a namespace's grants to one service
share one policy. `expected_registrations` counts every type for any config; `resource_formula`
in tools/bench.py is the closed form above, which the benchmark uses for the sizes it does not run.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from components.config import StackConfig, is_ipv4, parse_config

from tools.bench import Topology, resource_formula, topology_resources
from tools.mock_engine import RecordingMocks, run_program

COMPONENT = "ambient-egress:index:"
K8S = "kubernetes:"


def expected_registrations(config: StackConfig) -> Counter:
    """Every registered resource type and its count, derived from the config alone."""
    stand_ins = sum(1 for database in config.databases if database.is_stand_in)
    databases = len(config.databases)
    services = len(config.services)
    namespaces = len(config.grants)
    protection = config.bypass_protection
    addresses = [database.address for database in config.databases if database.address]
    ipv4 = any(is_ipv4(address) for address in addresses + [service.host for service in config.services])
    egress_policies = namespaces if protection.client_egress_policy and ipv4 else 0
    policies = sum(len({*grant.databases, *(access.target for access in grant.services)}) for grant in config.grants)
    accounts = sum(
        len({*grant.service_accounts, *(account for access in grant.services for account in access.service_accounts or ())})
        for grant in config.grants
    )
    counts = Counter({
        f"{COMPONENT}EgressAccessControl": 1,
        f"{COMPONENT}EgressGateway": 1,
        f"{K8S}gateway.networking.k8s.io/v1:Gateway": 1,
        f"{K8S}telemetry.istio.io/v1:Telemetry": 1,
        f"{K8S}core/v1:Namespace": 1 + (1 if stand_ins else 0) + namespaces,
        f"{COMPONENT}ExternalDatabase": databases,
        f"{COMPONENT}ExternalService": databases + services,
        f"{K8S}networking.istio.io/v1:ServiceEntry": databases + services,
        f"{K8S}security.istio.io/v1:AuthorizationPolicy": databases + services + policies,
        "random:index/randomPassword:RandomPassword": stand_ins,
        f"{K8S}core/v1:Secret": stand_ins,
        f"{K8S}apps/v1:Deployment": stand_ins,
        f"{K8S}core/v1:Service": stand_ins,
        f"{K8S}networking.k8s.io/v1:NetworkPolicy": (stand_ins if protection.database_ingress_policy else 0) + egress_policies,
        f"{COMPONENT}NamespaceGrant": namespaces,
        f"{K8S}core/v1:ServiceAccount": accounts,
        f"{K8S}core/v1:Pod": namespaces if config.test_clients else 0,
        f"{K8S}networking.istio.io/v1:DestinationRule": sum(1 for service in config.services if service.tls_origination),
        f"{K8S}gateway.networking.k8s.io/v1:HTTPRoute": sum(1 for service in config.services if service.request_headers),
    })
    return +counts  # drop zero counts


def registered(config: dict[str, Any], load_balancers: dict[str, dict[str, str]]) -> Counter:
    run = run_program(config, RecordingMocks(load_balancers))
    return Counter(resource.type for resource in run.resources)


def random_config(seed: int) -> tuple[dict[str, Any], dict[str, dict[str, str]], dict[str, Any]]:
    """A small random stack of databases: a mix of stand-ins and addresses, random flags and
    service accounts. Returns the config, the LoadBalancers and the formula's arguments."""
    rng = random.Random(seed)
    databases, namespaces = rng.randint(1, 4), rng.randint(1, 3)
    topology = Topology(databases, namespaces, rng.randint(namespaces, databases * namespaces),
                        externals=rng.randint(0, databases), seed=seed)
    config = topology.config()
    for database in config["databases"]:
        if "address" in database and rng.random() < 0.5:
            database["address"] = f"{database['name']}.example.com"  # a DNS name: no IP to deny
    accounts = 0
    for grant in config["grants"]:
        if rng.random() < 0.5:
            grant["serviceAccounts"] = [f"sa-{index}" for index in range(rng.randint(1, 3))]
            accounts += len(grant["serviceAccounts"])
    flags = {
        "databaseIngressPolicy": rng.random() < 0.5,
        "clientEgressPolicy": rng.random() < 0.5,
    }
    config["bypassProtection"] = flags
    config["testClients"] = rng.random() < 0.5
    formula = {
        "stand_ins": topology.stand_ins, "externals": topology.externals,
        "namespaces": topology.granted_namespaces, "grants": topology.grants, "service_accounts": accounts,
        "test_clients": config["testClients"], "database_ingress_policy": flags["databaseIngressPolicy"],
        "client_egress_policy": flags["clientEgressPolicy"],
        "ipv4_external": any(is_ipv4(database.get("address", "")) for database in config["databases"]),
    }
    return config, topology.load_balancers(), formula


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_formula_counts_what_a_random_stack_registers(seed: int) -> None:
    config, load_balancers, formula = random_config(seed)
    counts = registered(config, load_balancers)
    assert counts == expected_registrations(parse_config(config))
    assert sum(counts.values()) == resource_formula(**formula)


def test_the_benchmark_topologies_follow_the_formula() -> None:
    topology = Topology(4, 3, 6, externals=1)
    counts = registered(topology.config(), topology.load_balancers())
    assert sum(counts.values()) == topology_resources(topology)
    assert counts["kubernetes:security.istio.io/v1:AuthorizationPolicy"] == topology.databases + topology.grants


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
            {"namespace": "apps", "databases": ["orders"],
             "services": [{"name": "httpbin", "serviceAccounts": ["admin"]},
                          {"name": "httpbin", "methods": ["GET"], "paths": ["/get"]}, "ledger"]},
            {"namespace": "jobs", "services": ["ledger"], "serviceAccounts": ["batch"]},
        ],
        "bypassProtection": {"clientEgressPolicy": True},
    }
    counts = registered(config, {})
    assert counts == expected_registrations(parse_config(config))
    # An allow-nothing policy per target (3) and a policy per namespace and target (apps: 3, jobs: 1).
    assert counts["kubernetes:security.istio.io/v1:AuthorizationPolicy"] == 3 + 4


def test_the_headline_size() -> None:
    assert resource_formula(stand_ins=1000, externals=0, namespaces=1000, grants=10000) == 21006
    assert topology_resources(Topology(1000, 1000, 10000)) == 21006
    # Each term is linear: one more database, namespace or grant adds a constant.
    base = {"stand_ins": 10, "externals": 5, "namespaces": 10, "grants": 50}
    assert resource_formula(**{**base, "stand_ins": 11}) - resource_formula(**base) == 9
    assert resource_formula(**{**base, "externals": 6}) - resource_formula(**base) == 4
    assert resource_formula(**{**base, "namespaces": 11}) - resource_formula(**base) == 2
    assert resource_formula(**{**base, "grants": 51}) - resource_formula(**base) == 1
