"""What the stack owns on a cluster it shares: team namespaces are labelled, never created, and
revoking a grant leaves the namespace, its workloads and its service accounts in place."""

from __future__ import annotations

import pytest

from stack import ConfigError, parse_config

from .support import P, objects, run, stack_values

PROD_NAMESPACES = {"shop", "finance"}


@pytest.fixture(scope="module")
def prod():
    return run(stack_values("prod"), {})


def test_a_grant_to_an_existing_namespace_labels_it_for_ambient_and_creates_no_namespace(prod):
    assert not PROD_NAMESPACES & set(objects(prod, "Namespace"))
    labelled = objects(prod, "Namespace", patches=True)
    assert {name: patch["metadata"]["labels"] for name, patch in labelled.items() if name in PROD_NAMESPACES} == {
        "shop": {"istio.io/dataplane-mode": "ambient"}, "finance": {"istio.io/dataplane-mode": "ambient"}}


def test_an_existing_namespace_is_read_first_so_a_missing_one_stops_the_preview(prod):
    reads = {resource.name: resource for resource in prod.reads()}
    existing = {f"egress/grant/{namespace}/existing-namespace: create it, or let the grant own it"
                for namespace in PROD_NAMESPACES}
    assert existing <= set(reads)
    assert existing & prod.dependencies["egress/grant/shop/namespace-labels"]


def test_service_accounts_of_a_namespace_the_stack_does_not_own_are_referenced_never_created(prod):
    assert objects(prod, "ServiceAccount") == {}
    policy = objects(prod, "AuthorizationPolicy")["istio-egress/allow-orders-from-shop"]
    assert policy["spec"]["rules"][0]["from"] == [{"source": {"principals": ["cluster.local/ns/shop/sa/checkout"]}}]


def test_the_enrolment_label_stays_when_the_grant_goes(prod):
    assert prod.retained["egress/grant/shop/namespace-labels"] is True


def test_revoking_a_grant_removes_only_its_policies_and_the_label_patch_which_is_retained():
    values = stack_values("prod", testClients=True)
    before = run(values, {})
    after = run({**values, "grants": [grant for grant in values["grants"] if grant["namespace"] != "shop"]}, {})
    by_name = {resource.name: resource for resource in before.resources}
    removed = by_name.keys() - {resource.name for resource in after.resources}
    deleted = sorted(name for name in removed if not by_name[name].read and not before.retained[name])
    # What `pulumi up` deletes: what the grant put there (its policy, its test client pod, its egress
    # NetworkPolicy); never a namespace, a service account or the namespace's label.
    assert deleted == ["egress/grant/shop", "egress/grant/shop/client", "egress/grant/shop/egress-lockdown",
                       "egress/grant/shop/policy/orders"]
    assert all(by_name[name].type not in ("kubernetes:core/v1:Namespace", "kubernetes:core/v1:ServiceAccount")
               for name in deleted)


def test_a_grant_that_owns_its_namespace_creates_it_and_its_service_accounts():
    values = stack_values("prod", grants=[{"namespace": "shop", "createNamespace": True, "databases": ["orders"],
                                           "serviceAccounts": ["checkout"]}])
    program = run(values, {})
    assert objects(program, "Namespace")["shop"]["metadata"]["labels"]["istio.io/dataplane-mode"] == "ambient"
    assert set(objects(program, "ServiceAccount")) == {"shop/checkout"}
    assert "shop" not in objects(program, "Namespace", patches=True)


def test_the_dev_stack_owns_every_namespace_of_the_reference_design():
    program = run()
    assert set(objects(program, "Namespace")) == {"db", "istio-egress", "rds-demo-1", "rds-demo-2"}
    assert objects(program, "Namespace", patches=True) == {}


def test_an_egress_namespace_the_stack_does_not_own_is_read_and_labelled():
    program = run(stack_values("prod", createEgressNamespace=False), {})
    assert "istio-egress" not in objects(program, "Namespace")
    assert "istio-egress" in objects(program, "Namespace", patches=True)
    assert "egress/egress-gateway/existing-namespace: create it, or let the gateway own it" in {
        resource.name for resource in program.reads()}


def test_a_database_namespace_the_stack_does_not_own_is_read_and_left_outside_the_mesh():
    program = run(stack_values("dev", createDatabaseNamespace=False))
    assert "db" not in objects(program, "Namespace")
    assert "db" not in objects(program, "Namespace", patches=True)
    assert "egress/existing-database-namespace: create it, or set createDatabaseNamespace: true" in {
        resource.name for resource in program.reads()}


@pytest.mark.parametrize("namespace", ["default"])
def test_a_reserved_namespace_may_be_granted_but_never_owned(namespace):
    config = {"databases": [{"name": "orders", "address": "10.0.0.5"}]}
    assert parse_config({**config, "grants": [{"namespace": namespace, "databases": ["orders"]}]}).grants
    with pytest.raises(ConfigError) as raised:
        parse_config({**config, "grants": [{"namespace": namespace, "createNamespace": True, "databases": ["orders"]}]})
    assert raised.value.problems == (f"{P}grants[0].createNamespace: '{namespace}' exists in every cluster and is never "
                                     "owned by a stack; remove createNamespace",)
