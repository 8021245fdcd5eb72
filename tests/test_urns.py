"""Every valid config, and every program composing the stack more than once, registers each URN and
each Kubernetes object once: the engine refuses a repeated URN, a cluster a repeated object."""

from __future__ import annotations

import pulumi
import pytest

from stack import ConfigError, parse_config
from stack.control import EgressAccessControl
from tools.mock_engine import RecordingMocks, run_on_mocks, run_program

from .support import P, stack_values


def test_two_stacks_in_one_program_one_per_cluster_register_unique_urns():
    def program():
        for cluster in ("cluster-a", "cluster-b"):
            provider = pulumi.ProviderResource("kubernetes", cluster)
            EgressAccessControl(cluster, parse_config(stack_values("prod")), pulumi.ResourceOptions(providers=[provider]))
    run = run_on_mocks(program)
    assert len(run.urns) == len(set(run.urns)) > 60
    assert {urn.rsplit("::", 1)[1].split("/", 1)[0] for urn in run.urns if "EgressAccessControl" in urn} == {
        "cluster-a", "cluster-b"}


@pytest.mark.parametrize("grants", [
    pytest.param([{"namespace": "shop", "databases": ["orders"], "serviceAccounts": ["a-b"]},
                  {"namespace": "shop-a", "databases": ["orders"], "serviceAccounts": ["b"]}], id="namespace-and-account"),
    pytest.param([{"namespace": "shop", "databases": ["orders", "orders-a"]},
                  {"namespace": "shop-orders", "databases": ["a"]}], id="namespace-and-database"),
])
def test_configs_whose_names_join_alike_register_unique_urns(grants):
    databases = [{"name": name, "address": "10.0.0.5"} for name in ("orders", "orders-a", "a")]
    run = run_program({"databases": databases, "grants": grants, "testClients": True}, RecordingMocks())
    assert len(run.urns) == len(set(run.urns))


def test_two_grants_whose_policy_names_would_be_one_object_are_rejected_naming_both():
    # `allow-a-from-b-from-c` is database `a` granted to `b-from-c`, and `a-from-b` granted to `c`.
    values = {"databases": [{"name": "a", "address": "10.0.0.5"}, {"name": "a-from-b", "address": "10.0.0.6"}],
              "grants": [{"namespace": "b-from-c", "databases": ["a"]}, {"namespace": "c", "databases": ["a-from-b"]}]}
    with pytest.raises(ConfigError) as raised:
        parse_config(values)
    assert raised.value.problems == (
        f"{P}grants[1].namespace: its policy for 'a-from-b' would be named allow-a-from-b-from-c, like the policy of "
        f"{P}grants[0] for 'a'; rename the namespace or the target",)


def test_a_run_on_the_mock_engine_starts_with_no_exports_from_the_run_before():
    first = run_on_mocks(lambda: pulumi.export("onlyInTheFirstRun", "x"))
    second = run_on_mocks(lambda: pulumi.export("inTheSecondRun", "y"))
    assert (sorted(first.outputs), sorted(second.outputs)) == (["onlyInTheFirstRun"], ["inTheSecondRun"])
