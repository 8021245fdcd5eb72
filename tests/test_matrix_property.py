"""Property: for any topology, the matrix the analysis computes from the program's manifests is
exactly the matrix the grants declare. The analysis never sees the config, so this checks the
program against an independent reading of Istio's semantics."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import MeshIndex, access_matrix
from stack import parse_config
from stack.access import access_matrix as declared_matrix
from tools.mock_engine import RecordingMocks, run_program

NAMESPACES = [f"team-{index}" for index in range(6)]
ACCOUNTS = ["app", "batch", "admin"]


@st.composite
def topologies(draw) -> tuple[dict, dict]:
    count = draw(st.integers(min_value=1, max_value=5))
    names = [f"db-{index}" for index in range(count)]
    databases, load_balancers = [], {}
    for index, name in enumerate(names):
        kind = draw(st.sampled_from(["stand-in", "ip", "dns"]))
        database = {"name": name, "port": draw(st.sampled_from([5432, 6432, 15432]))}
        if kind == "ip":
            database["address"] = str(ipaddress.IPv4Address("198.51.100.0") + 10 + index)
        elif kind == "dns":
            database["address"] = f"{name}.databases.example.com"
        else:
            load_balancers[name] = {"ip": str(ipaddress.IPv4Address("203.0.113.0") + 10 + index)}
        databases.append(database)
    grants = [
        {"namespace": namespace,
         "databases": draw(st.lists(st.sampled_from(names), min_size=1, unique=True)),
         **({"serviceAccounts": accounts}
            if (accounts := draw(st.lists(st.sampled_from(ACCOUNTS), unique=True, max_size=2))) else {})}
        for namespace in draw(st.lists(st.sampled_from(NAMESPACES), unique=True, max_size=4))
    ]
    lockdown = {"enabled": draw(st.booleans())}
    return {"databases": databases, "grants": grants, "egressLockdown": lockdown}, load_balancers


@settings(max_examples=200)
@given(topologies())
def test_matrix_from_the_manifests_equals_the_declared_grants(topology):
    assert_matrix_equals_grants(*topology)


@settings(max_examples=100)
@given(topologies())
def test_in_sidecar_mode_too(topology):
    """The sidecar rendering's matrix, from its sidecars' visibility, routes and the egress gateway's
    policies, is the same as the grants."""
    config_values, load_balancers = topology
    assert_matrix_equals_grants({**config_values, "dataplane": "sidecar"}, load_balancers)


def assert_matrix_equals_grants(config_values: dict, load_balancers: dict) -> None:
    config = parse_config(config_values)
    declared = declared_matrix(config)
    manifests = run_program(config_values, RecordingMocks(load_balancers)).applied()
    computed = access_matrix(MeshIndex(manifests), clients=declared)
    cells = {
        client: {destination.service_entry.name: computed.verdict(client, destination.label).decision.value
                 for destination in computed.destinations}
        for client in declared
    }
    assert cells == declared
