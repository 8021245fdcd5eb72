"""The analysis over what the project's Pulumi program renders, run on mocks: the waypoint is the
only way out of every granted namespace (issue 11), whatever stack or Istio release renders it."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import Code, Decision, MeshIndex, access_matrix, analyze
from stack import parse_config
from stack.access import access_matrix as declared_matrix
from tests.support import SEED_000_TABLE, dev_values, run, stack_values
from tools.mock_engine import RecordingMocks, run_program

UNPROTECTED = {"serviceEntryAddresses": False, "databaseIngressPolicy": False}
UNLOCKED = {"enabled": False}


def applied(stack: str, **overrides) -> list[dict]:
    # The prod stack's databases are existing ones: no stand-in, no LoadBalancer.
    return run(stack_values(stack, **overrides), None if stack == "dev" else {}).applied()


def test_program_output_has_no_route_around_the_waypoint_and_no_finding():
    manifests = run().applied()
    assert analyze(manifests) == []
    matrix = access_matrix(manifests)
    assert [verdict.bypasses for _, _, verdict in matrix.entries()] == [()] * 4
    assert matrix.to_dict()["cells"] == SEED_000_TABLE


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_granted_namespace_reaches_nothing_but_the_waypoint(stack):
    manifests = applied(stack)
    matrix = access_matrix(manifests)
    assert {client: verdict.decision for client, verdict in matrix.other_destinations.items()} == dict.fromkeys(
        matrix.clients, Decision.DENY
    )
    assert [cell for cell in matrix.entries() if cell[2].bypasses] == []
    assert analyze(manifests) == []


def test_the_lockdown_reason_names_the_cidrs_it_lets_through():
    reason = access_matrix(applied("prod")).other_destinations["shop"].reason
    assert reason == "egress NetworkPolicies (shop/egress-lockdown) let pods send only to pods in the cluster, 10.0.0.1/32"


def test_without_lockdown_any_other_external_destination_is_open_and_the_dns_host_is_reported():
    manifests = applied("prod", egressLockdown=UNLOCKED)
    matrix = access_matrix(manifests)
    assert {client: verdict.decision for client, verdict in matrix.other_destinations.items()} == dict.fromkeys(
        ["finance", "shop", "shop/sa/checkout"], Decision.OPEN
    )
    assert matrix.other_destinations["shop"].reason == (
        "no egress NetworkPolicy of namespace shop selects every pod, so a pod it does not select sends anywhere"
    )
    [finding] = analyze(manifests)
    assert (finding.code, finding.resource) == (Code.DNS_HOST_UNPINNED, "ServiceEntry istio-egress/orders")
    assert "pods of finance, shop may connect to them directly" in finding.message


def test_lockdown_alone_closes_the_raw_ip_routes_but_not_the_in_cluster_ones():
    locked = analyze(applied("dev", bypassProtection=UNPROTECTED))
    assert [(finding.code, finding.resource) for finding in locked] == [
        (Code.DATABASE_ADMITS_CLIENTS, "Service db/postgres-1"),
        (Code.DATABASE_ADMITS_CLIENTS, "Service db/postgres-2"),
    ]


def test_program_without_bypass_protection_shows_the_bypasses():
    manifests = run(dev_values(bypassProtection=UNPROTECTED, egressLockdown=UNLOCKED)).applied()
    assert [(finding.code, finding.resource) for finding in analyze(manifests)] == [
        ("EGW0401", "ServiceEntry istio-egress/postgres-1"),
        ("EGW0401", "ServiceEntry istio-egress/postgres-2"),
        ("EGW0402", "Service db/postgres-1"),
        ("EGW0402", "Service db/postgres-2"),
    ]
    matrix = access_matrix(manifests)
    assert matrix.verdict("rds-demo-2", "istio-egress/postgres-1").decision is Decision.BYPASS
    assert matrix.verdict("rds-demo-1", "istio-egress/postgres-2").bypasses == (
        "raw IP 203.0.113.11",
        "in-cluster db/postgres-2",
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_pinned_ips_judge_alike_whether_rendered_for_dns_or_for_passthrough(stack):
    """Istio 1.24 renders an IP target `resolution: DNS`, 1.28 `resolution: NONE` with the IP in
    `addresses` (release note 57656.yaml): each, judged for its release, gives the same verdicts."""
    judged = {}
    for version in ("1.24", "1.28"):
        manifests = applied(stack, istio={"version": version})
        resolutions = {m["spec"]["resolution"] for m in manifests if m["kind"] == "ServiceEntry" and m["spec"].get("addresses")}
        matrix = access_matrix(manifests, istio_version=version)
        judged[version] = (matrix.to_dict(reasons=False), analyze(manifests, istio_version=version))
        assert resolutions == {"DNS" if version == "1.24" else "NONE"}
    assert judged["1.24"] == judged["1.28"]
    assert judged["1.28"][1] == []


def test_program_service_account_grant_gives_the_account_its_own_row():
    grants = [
        {"namespace": "rds-demo-1", "databases": ["postgres-1"], "serviceAccounts": ["app"]},
        {"namespace": "rds-demo-2", "databases": ["postgres-2"]},
    ]
    matrix = access_matrix(run(dev_values(grants=grants, trustDomain="example.org")).applied())
    assert matrix.to_dict()["cells"] == {
        "rds-demo-1": {"istio-egress/postgres-1": "DENY", "istio-egress/postgres-2": "DENY"},
        "rds-demo-1/sa/app": {"istio-egress/postgres-1": "ALLOW", "istio-egress/postgres-2": "DENY"},
        "rds-demo-2": {"istio-egress/postgres-1": "DENY", "istio-egress/postgres-2": "ALLOW"},
    }


@st.composite
def stacks(draw) -> tuple[dict, dict]:
    """Databases named by IP, by DNS or stand-ins, granted to some namespaces; lockdown on or off."""
    names = [f"db-{index}" for index in range(draw(st.integers(min_value=1, max_value=4)))]
    databases, load_balancers = [], {}
    for index, name in enumerate(names):
        kind = draw(st.sampled_from(["stand-in", "ip", "dns"]))
        database: dict = {"name": name, "port": 5432}
        if kind == "ip":
            database["address"] = str(ipaddress.IPv4Address("198.51.100.10") + index)
        elif kind == "dns":
            database["address"] = f"{name}.databases.example.com"
        else:
            load_balancers[name] = {"ip": str(ipaddress.IPv4Address("203.0.113.10") + index)}
        databases.append(database)
    namespaces = draw(st.lists(st.sampled_from([f"team-{index}" for index in range(4)]), min_size=1, max_size=3, unique=True))
    grants = [{"namespace": ns, "databases": draw(st.lists(st.sampled_from(names), min_size=1, unique=True))}
              for ns in namespaces]
    values = {"databases": databases, "grants": grants, "istio": {"version": draw(st.sampled_from(["1.24", "1.28", "1.30"]))},
              "egressLockdown": {"enabled": draw(st.booleans())}}
    return values, load_balancers


@settings(max_examples=25, deadline=None)
@given(stacks())
def test_generated_stacks_leave_no_way_out_but_the_waypoint_unless_unlocked(stack):
    values, load_balancers = stack
    locked = values["egressLockdown"]["enabled"]
    version = values["istio"]["version"]
    manifests = run_program(values, RecordingMocks(load_balancers)).applied()
    granted = declared_matrix(parse_config(values))
    matrix = access_matrix(MeshIndex(manifests), granted, istio_version=version)
    expected = Decision.DENY if locked else Decision.OPEN
    assert {client: matrix.other_destinations[client].decision for client in granted} == dict.fromkeys(granted, expected)
    assert [cell for cell in matrix.entries() if cell[2].bypasses] == []
    findings = {finding.code for finding in analyze(manifests, istio_version=version)}
    dns_named = any(str(database.get("address", "")).endswith(".example.com") for database in values["databases"])
    assert findings == ({Code.DNS_HOST_UNPINNED} if dns_named and not locked else set())
