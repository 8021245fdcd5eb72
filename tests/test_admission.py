"""No shadow ServiceEntries: the admission policy refuses a ServiceEntry outside the egress namespace,
so no tenant can claim a database's host with one of its own and route around the waypoint."""

from __future__ import annotations

import pytest

from .support import dev_values, objects, run
from .support.schema import evaluate_cel

POLICY = "ambient-egress.istio-egress.serviceentry-namespaces"


def admitted(policy: dict, namespace: str, name: str = "postgres-1") -> tuple[bool, str]:
    """What the API server's CEL decides for a ServiceEntry created in `namespace`, and its message."""
    [validation] = policy["spec"]["validations"]
    request = {"namespace": namespace, "name": name, "operation": "CREATE"}
    shadow = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": name},
              "spec": {"hosts": ["203.0.113.10.nip.io"], "addresses": ["203.0.113.10"]}}
    verdict = evaluate_cel(validation["expression"], {"request": request, "object": shadow})
    return bool(verdict), str(evaluate_cel(validation["messageExpression"], {"request": request, "object": shadow}))


@pytest.fixture(scope="module")
def dev():
    return run()


def test_a_tenants_service_entry_shadowing_a_database_is_refused_with_the_reason(dev):
    allowed, message = admitted(objects(dev, "ValidatingAdmissionPolicy")[POLICY], "rds-demo-1")
    assert not allowed
    assert message == ("ServiceEntry postgres-1 may not be created in namespace rds-demo-1: ServiceEntries belong in "
                       "istio-egress, where the egress waypoint enforces them")


def test_the_egress_namespaces_own_service_entries_are_admitted(dev):
    assert admitted(objects(dev, "ValidatingAdmissionPolicy")[POLICY], "istio-egress")[0]


def test_the_policy_is_bound_to_deny_and_watches_every_create_and_update_of_a_service_entry(dev):
    policy = objects(dev, "ValidatingAdmissionPolicy")[POLICY]
    assert policy["spec"]["matchConstraints"]["resourceRules"] == [{
        "apiGroups": ["networking.istio.io"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
        "resources": ["serviceentries"]}]
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert objects(dev, "ValidatingAdmissionPolicyBinding")[POLICY]["spec"] == {"policyName": POLICY,
                                                                                 "validationActions": ["Deny"]}


def test_namespaces_listed_as_allowed_may_keep_their_own_service_entries():
    program = run(dev_values(serviceEntryAdmission={"allowedNamespaces": ["legacy-egress"]}))
    policy = objects(program, "ValidatingAdmissionPolicy")[POLICY]
    assert admitted(policy, "legacy-egress")[0]
    assert not admitted(policy, "rds-demo-1")[0]


def test_the_admission_policy_can_be_turned_off():
    program = run(dev_values(serviceEntryAdmission={"enabled": False}))
    assert objects(program, "ValidatingAdmissionPolicy") == {}
    assert objects(program, "ValidatingAdmissionPolicyBinding") == {}
