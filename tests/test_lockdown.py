"""Egress lockdown: each granted namespace's pods send only to pods in the cluster (the egress
waypoint among them) and to the CIDRs the config allows, so the waypoint is the only way out."""

from __future__ import annotations

import pytest

from stack import ConfigError, parse_config

from .support import P, objects, run, stack_values

IN_CLUSTER_PODS = {"to": [{"namespaceSelector": {}}]}


def lockdowns(program) -> dict[str, dict]:
    return {key.split("/")[0]: policy["spec"] for key, policy in objects(program, "NetworkPolicy").items()
            if key.endswith("/egress-lockdown")}


def test_every_granted_namespace_is_locked_down_by_default_including_ones_the_stack_does_not_own():
    program = run(stack_values("prod", egressLockdown={}), {})
    assert lockdowns(program) == {
        namespace: {"podSelector": {}, "policyTypes": ["Egress"], "egress": [IN_CLUSTER_PODS]}
        for namespace in ("shop", "finance")
    }


def test_allowed_cidrs_of_the_stack_and_of_the_grant_are_added_to_that_namespace_only():
    program = run(stack_values("prod", egressLockdown={"allowCidrs": ["10.0.0.1"]}, grants=[
        {"namespace": "shop", "databases": ["orders"], "egressLockdown": {"allowCidrs": ["169.254.20.10/32"]}},
        {"namespace": "finance", "databases": ["billing"]},
    ]), {})
    egress = {namespace: spec["egress"] for namespace, spec in lockdowns(program).items()}
    assert egress == {
        "shop": [IN_CLUSTER_PODS, {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}, {"ipBlock": {"cidr": "169.254.20.10/32"}}]}],
        "finance": [IN_CLUSTER_PODS, {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]}],
    }


def test_a_grant_may_opt_out_and_the_stack_may_opt_out_with_a_grant_opting_back_in():
    grants = [{"namespace": "shop", "databases": ["orders"], "egressLockdown": {"enabled": False}},
              {"namespace": "finance", "databases": ["billing"]}]
    assert set(lockdowns(run(stack_values("prod", grants=grants), {}))) == {"finance"}
    grants[1]["egressLockdown"] = {"enabled": True}
    assert set(lockdowns(run(stack_values("prod", grants=grants, egressLockdown={"enabled": False}), {}))) == {"finance"}


@pytest.mark.parametrize(("cidr", "words"), [
    ("10.0.0.1/8", "'10.0.0.1/8' has host bits set; did you mean '10.0.0.0/8'?"),
    ("10.0.0.0/33", "'10.0.0.0/33' is not an IPv4 address or CIDR, e.g. 10.96.0.1 or 10.0.0.0/8"),
    ("kubernetes.default", "'kubernetes.default' is not an IPv4 address or CIDR"),
])
def test_an_allowed_cidr_that_is_no_ipv4_network_is_refused_with_the_fix(cidr, words):
    with pytest.raises(ConfigError) as raised:
        parse_config({"databases": [], "egressLockdown": {"allowCidrs": [cidr]}})
    assert raised.value.problems[0].startswith(f"{P}egressLockdown.allowCidrs[0]: {words}")
