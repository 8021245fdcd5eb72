"""The number of resources the program records is an exact formula of the stack config.

`tools/bench/formula.py` holds the closed form, term by term. This file derives the same count a
second way, per resource type from the parsed config (`expected_resources`), and checks both
against what the mock engine records for random stacks, the benchmark's generated stacks and the
repository's stacks.

Every term is pinned: across the stacks checked here the values of the formula's terms are
linearly independent (`test_the_checked_stacks_pin_every_term`), so no other coefficients fit
every run, and changing any one term (its coefficient, or what it counts, to anything the other
terms or a constant could stand for) fails at least one of them.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import pytest

from components.values import Dataplane
from stack import StackConfig, parse_config
from tools.bench.formula import READS, REGISTRATIONS, StackShape, Term, reads, registrations, resources
from tools.bench.topology import Topology
from tools.mock_engine import RecordingMocks, run_program

from .support import DEV_LOAD_BALANCERS, ROOT, stack_values

COMPONENT = "ambient-egress:index:"
K8S = "kubernetes:"
CREATED, READ = False, True
Stack = tuple[dict[str, Any], dict[str, dict[str, str]]]


def granted_pairs(config: StackConfig) -> int:
    """G: one policy per grant and target, however many accesses to it the grant lists."""
    return sum(len(dict.fromkeys([*grant.databases, *(access.name for access in grant.services)]))
               for grant in config.grants)


def expected_resources(config: StackConfig) -> Counter[tuple[str, bool]]:
    """Every resource type the program records, created or read, and its count, from the config alone."""
    sidecar, ambient = config.dataplane is Dataplane.SIDECAR, config.dataplane is Dataplane.AMBIENT
    stand_ins = sum(1 for database in config.databases if database.is_stand_in)
    targets = len(config.databases) + len(config.services)
    owned = [grant for grant in config.grants if grant.create_namespace]
    not_owned = [grant for grant in config.grants if not grant.create_namespace]
    namespaces = len(config.grants)
    tls = sum(1 for service in config.services if service.tls_origination)
    headers = sum(1 for service in config.services if service.request_headers)
    admission, gateway_api, istio = (config.service_entry_admission.enabled, config.gateway_api.install,
                                     config.istio.install)
    egress_owned, database_namespace = config.create_egress_namespace, stand_ins > 0
    crds = 6 if sidecar else (0 if gateway_api else 2 + (headers > 0)) + (0 if istio else 3 + (tls > 0))
    counts: Counter[tuple[str, bool]] = Counter({
        (f"{COMPONENT}EgressAccessControl", CREATED): 1,
        (f"{COMPONENT}GatewayApiCrds", CREATED): gateway_api,
        (f"{K8S}yaml/v2:ConfigFile", CREATED): gateway_api,
        (f"{COMPONENT}IstioAmbient", CREATED): istio,
        (f"{K8S}helm.sh/v3:Release", CREATED): 4 * istio,
        (f"{COMPONENT}MeshPrerequisites", CREATED): 1,
        (f"{K8S}apiextensions.k8s.io/v1:CustomResourceDefinition", READ): crds,
        (f"{K8S}gateway.networking.k8s.io/v1:GatewayClass", READ): ambient and not istio,
        (f"{K8S}apps/v1:DaemonSet", READ): ambient and not istio,
        (f"{K8S}core/v1:Service", READ): sidecar,
        (f"{COMPONENT}ServiceEntryAdmission", CREATED): admission,
        (f"{K8S}admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy", CREATED): admission,
        (f"{K8S}admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding", CREATED): admission,
        (f"{COMPONENT}EgressGateway", CREATED): ambient,
        (f"{K8S}gateway.networking.k8s.io/v1:Gateway", CREATED): ambient,
        (f"{K8S}telemetry.istio.io/v1:Telemetry", CREATED): ambient,
        (f"{COMPONENT}SidecarEgressGateway", CREATED): sidecar,
        (f"{K8S}core/v1:Namespace", CREATED):
            egress_owned + (database_namespace and config.create_database_namespace) + len(owned),
        (f"{K8S}core/v1:Namespace", READ):
            (not egress_owned) + (database_namespace and not config.create_database_namespace) + len(not_owned),
        (f"{K8S}core/v1:NamespacePatch", CREATED): (ambient and not egress_owned) + len(not_owned),
        (f"{COMPONENT}ExternalDatabase", CREATED): len(config.databases),
        (f"{COMPONENT}ExternalService", CREATED): targets,
        (f"{K8S}networking.istio.io/v1:ServiceEntry", CREATED): targets,
        # Ambient: an allow-nothing policy per target; sidecar mode: one on the egress gateway.
        (f"{K8S}security.istio.io/v1:AuthorizationPolicy", CREATED): (1 if sidecar else targets) + granted_pairs(config),
        (f"{K8S}networking.istio.io/v1:Gateway", CREATED): targets if sidecar else 0,
        (f"{K8S}networking.istio.io/v1:VirtualService", CREATED): targets if sidecar else 0,
        (f"{K8S}networking.istio.io/v1:DestinationRule", CREATED): (targets if sidecar else 0) + tls,
        (f"{K8S}gateway.networking.k8s.io/v1:HTTPRoute", CREATED): headers if ambient else 0,
        (f"{K8S}networking.istio.io/v1:Sidecar", CREATED): namespaces if sidecar else 0,
        ("random:index/randomPassword:RandomPassword", CREATED): stand_ins,
        (f"{K8S}core/v1:Secret", CREATED): stand_ins,
        (f"{K8S}apps/v1:Deployment", CREATED): stand_ins,
        (f"{K8S}core/v1:Service", CREATED): stand_ins,
        (f"{K8S}networking.k8s.io/v1:NetworkPolicy", CREATED):
            (stand_ins if config.bypass_protection.database_ingress_policy else 0)
            + sum(1 for grant in config.grants if config.lockdown(grant).enabled),
        (f"{COMPONENT}NamespaceGrant", CREATED): namespaces,
        (f"{K8S}core/v1:ServiceAccount", CREATED): sum(len(grant.identities()) for grant in owned),
        (f"{K8S}core/v1:ServiceAccount", READ):
            sum(1 for grant in not_owned if grant.identities()) if config.test_clients else 0,
        (f"{K8S}core/v1:Pod", CREATED): namespaces if config.test_clients else 0,
    })
    return +counts  # drop zero counts


def shape_of(config: StackConfig) -> StackShape:
    """The formula's arguments."""
    owned = [grant for grant in config.grants if grant.create_namespace]
    not_owned = [grant for grant in config.grants if not grant.create_namespace]
    return StackShape(
        stand_ins=sum(1 for database in config.databases if database.is_stand_in),
        existing=sum(1 for database in config.databases if not database.is_stand_in),
        services=len(config.services),
        tls_services=sum(1 for service in config.services if service.tls_origination),
        header_services=sum(1 for service in config.services if service.request_headers),
        owned_namespaces=len(owned), unowned_namespaces=len(not_owned), grants=granted_pairs(config),
        unlocked_namespaces=sum(1 for grant in config.grants if not config.lockdown(grant).enabled),
        owned_service_accounts=sum(len(grant.identities()) for grant in owned),
        unowned_namespaces_with_service_accounts=sum(1 for grant in not_owned if grant.identities()),
        sidecar=config.dataplane is Dataplane.SIDECAR,
        service_entry_admission=config.service_entry_admission.enabled,
        gateway_api_installed=config.gateway_api.install, istio_installed=config.istio.install,
        egress_namespace_owned=config.create_egress_namespace,
        database_namespace_owned=config.create_database_namespace,
        database_ingress_policy=config.bypass_protection.database_ingress_policy,
        test_clients=config.test_clients,
    )


def assert_follows_the_formula(config: dict[str, Any], load_balancers: dict[str, dict[str, str]]) -> StackShape:
    run = run_program(config, RecordingMocks(load_balancers))
    counts = Counter((resource.type, resource.read) for resource in run.resources)
    parsed = parse_config(config)
    assert counts == expected_resources(parsed)
    shape = shape_of(parsed)
    assert sum(count for (_, read), count in counts.items() if not read) == registrations(shape)
    assert sum(count for (_, read), count in counts.items() if read) == reads(shape)
    assert counts.total() == resources(shape)
    return shape


# --- the stacks checked ---------------------------------------------------------------------------


def _service(rng: random.Random, index: int, *, sidecar: bool) -> dict[str, Any]:
    """A service with one port (sidecar mode's limit) or up to three, and the options its ports allow."""
    protocols = [rng.choice(("HTTP", "HTTP", "TCP", "TLS")) for _ in range(1 if sidecar else rng.randint(1, 3))]
    service: dict[str, Any] = {
        "name": f"svc-{index}", "host": rng.choice((f"svc-{index}.example.com", f"198.51.100.{index + 1}")),
        "ports": [{"number": 8000 + offset, "protocol": protocol} for offset, protocol in enumerate(protocols)],
    }
    if set(protocols) == {"HTTP"} and rng.random() < 0.5:
        service["tlsOrigination"] = True
    if protocols.count("HTTP") == 1 and rng.random() < 0.5:
        service["requestHeaders"] = {"x-tenant": f"t{index}"}
    return service


def _accesses(rng: random.Random, services: Sequence[dict[str, Any]]) -> list[Any]:
    """Accesses to some services: by name, limited to some requests, by some identities, one service
    sometimes twice (one policy with two rules)."""
    accesses: list[Any] = []
    for service in rng.sample(list(services), rng.randint(0, len(services))):
        http = any(port["protocol"] == "HTTP" for port in service["ports"])
        for _ in range(rng.choice((1, 1, 2))):
            access: dict[str, Any] = {"name": service["name"]}
            if http and rng.random() < 0.5:
                access["methods"] = ["GET"]
            if rng.random() < 0.3:
                access["serviceAccounts"] = [f"reader-{rng.randint(0, 1)}"]
            accesses.append(access if len(access) > 1 else service["name"])
    return accesses


def random_stack(seed: int) -> Stack:
    """A small stack with every count and switch the formula reads, and some it does not (ports,
    methods, the Istio version), at random."""
    rng = random.Random(seed)
    sidecar = rng.random() < 0.35
    install_istio = not sidecar and rng.random() < 0.25
    databases: list[dict[str, Any]] = []
    for index in range(rng.randint(0, 3)):
        database: dict[str, Any] = {"name": f"db-{index}", "port": rng.choice((5432, 3306))}
        kind = rng.choice(("stand-in", "ipv4", "dns"))
        if kind == "ipv4":
            database["address"] = f"192.0.2.{index + 1}"
        elif kind == "dns":
            database["address"] = f"db-{index}.example.com"
        databases.append(database)
    services = [_service(rng, index, sidecar=sidecar) for index in range(rng.randint(0 if databases else 1, 3))]
    grants = []
    for index in range(rng.randint(1, 3)):
        names = rng.sample([database["name"] for database in databases], rng.randint(0, len(databases)))
        accesses = _accesses(rng, services)
        if not names and not accesses:
            names, accesses = (databases[:1], []) if databases else ([], [services[0]["name"]])
            names = [database["name"] for database in names]
        grant: dict[str, Any] = {"namespace": f"team-{index}"}
        if names:
            grant["databases"] = names
        if accesses:
            grant["services"] = accesses
        if rng.random() < 0.5:
            grant["createNamespace"] = True
        if rng.random() < 0.4:
            grant["serviceAccounts"] = [f"sa-{account}" for account in range(rng.randint(1, 2))]
        if rng.random() < 0.3:
            grant["egressLockdown"] = {"enabled": rng.random() < 0.5}
        grants.append(grant)
    config: dict[str, Any] = {
        "databases": databases, "services": services, "grants": grants,
        "dataplane": "sidecar" if sidecar else "ambient",
        "testClients": rng.random() < 0.5,
        "createEgressNamespace": rng.random() < 0.6, "createDatabaseNamespace": rng.random() < 0.6,
        "bypassProtection": {"databaseIngressPolicy": rng.random() < 0.6},
        "serviceEntryAdmission": {"enabled": rng.random() < 0.6},
        "egressLockdown": {"enabled": rng.random() < 0.7},
        "istio": {"install": install_istio, "version": "1.30.3" if install_istio else rng.choice(("1.26", "1.30"))},
        "gatewayApi": {"install": rng.random() < 0.25},
    }
    load_balancers = {database["name"]: {"ip": f"198.18.0.{index + 1}"}
                      for index, database in enumerate(databases) if "address" not in database}
    return config, load_balancers


RANDOM_SEEDS = range(1, 41)
TOPOLOGIES = (Topology(4, 3, 6), Topology(5, 4, 12, stand_ins=3), Topology(3, 5, 3, stand_ins=3))
EXAMPLE_STACKS = ("dev", "prod", "kind")


def example_stack(name: str) -> Stack:
    return stack_values(name), DEV_LOAD_BALANCERS


def checked_stacks() -> list[Stack]:
    return ([random_stack(seed) for seed in RANDOM_SEEDS] + [(topology.config(), topology.load_balancers())
                                                             for topology in TOPOLOGIES]
            + [example_stack(name) for name in EXAMPLE_STACKS])


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_a_random_stack_records_what_the_formula_counts(seed: int) -> None:
    assert_follows_the_formula(*random_stack(seed))


@pytest.mark.parametrize("topology", TOPOLOGIES, ids=lambda topology: topology.label)
def test_the_generated_benchmark_stacks_follow_the_formula(topology: Topology) -> None:
    shape = assert_follows_the_formula(topology.config(), topology.load_balancers())
    assert topology.shape() == shape
    assert shape.owned_namespaces == 0, "a platform grants its teams' namespaces, which the stack does not own"


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_the_example_stacks_follow_the_formula(stack: str) -> None:
    assert_follows_the_formula(*example_stack(stack))


# --- every term is pinned ----------------------------------------------------------------------------


def rank(rows: Sequence[Sequence[int]]) -> int:
    """The rank of an integer matrix, by exact Gaussian elimination."""
    matrix = [[Fraction(value) for value in row] for row in rows]
    found = 0
    for column in range(len(matrix[0]) if matrix else 0):
        pivot = next((row for row in range(found, len(matrix)) if matrix[row][column]), None)
        if pivot is None:
            continue
        matrix[found], matrix[pivot] = matrix[pivot], matrix[found]
        for row in range(len(matrix)):
            if row != found and matrix[row][column]:
                factor = matrix[row][column] / matrix[found][column]
                matrix[row] = [value - factor * lead for value, lead in zip(matrix[row], matrix[found], strict=True)]
        found += 1
    return found


@pytest.mark.parametrize("terms", [REGISTRATIONS, READS], ids=["registrations", "reads"])
def test_the_checked_stacks_pin_every_term(terms: tuple[Term, ...]) -> None:
    shapes = [shape_of(parse_config(config)) for config, _ in checked_stacks()]
    values = [[term.value(shape) for term in terms] for shape in shapes]
    assert rank(values) == len(terms), "some term is never exercised apart from the others"


def test_the_random_stacks_take_every_switch_both_ways() -> None:
    shapes = [shape_of(parse_config(random_stack(seed)[0])) for seed in RANDOM_SEEDS]
    for field in ("sidecar", "service_entry_admission", "gateway_api_installed", "istio_installed",
                  "egress_namespace_owned", "database_namespace_owned", "database_ingress_policy", "test_clients"):
        assert {getattr(shape, field) for shape in shapes} == {False, True}, field


def test_a_sidecar_stack_has_objects_of_its_own() -> None:
    """The same stack in both dataplanes: sidecar mode trades the waypoint and the per-target
    allow-nothing policies for the gateway's baseline, three routing objects per target and a
    Sidecar per grant."""
    config = {"databases": [{"name": "orders", "address": "192.0.2.7"}, {"name": "billing", "address": "db.example.com"}],
              "grants": [{"namespace": "shop", "databases": ["orders", "billing"]},
                         {"namespace": "ops", "databases": ["orders"]}]}
    ambient = assert_follows_the_formula(config, {})
    sidecar = assert_follows_the_formula({**config, "dataplane": "sidecar"}, {})
    # The door: 6 against 4 + oₑ = 5; per target 4 against 6 (two targets); per grant 2 + L against 3 + L.
    assert registrations(sidecar) - registrations(ambient) == (5 - 6) + 2 * 2 + 2
    # The ambient stack reads five CRDs, the GatewayClass and ztunnel, sidecar mode six CRDs and the gateway's Service.
    assert reads(sidecar) == reads(ambient)


def test_the_headline_size() -> None:
    shape = Topology(1000, 1000, 10000).shape()
    assert (registrations(shape), reads(shape), resources(shape)) == (17_009, 1_007, 18_016)


def test_the_formula_module_loads_without_pulumi_or_the_rest_of_the_benchmark() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, tools.bench.formula; print(' '.join(sorted(sys.modules)))"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert "tools.bench.formula" in loaded
    assert [name for name in loaded if name.split(".")[0] in ("pulumi", "pulumi_kubernetes", "stack", "components")
            or (name.startswith("tools.bench.") and name != "tools.bench.formula")] == []
