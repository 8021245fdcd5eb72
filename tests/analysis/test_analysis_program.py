"""The analysis over what the project's Pulumi program renders, run on mocks."""

from __future__ import annotations

from analysis import Decision, access_matrix, analyze
from tests.support import dev_values, run

UNPROTECTED = {"serviceEntryAddresses": False, "databaseIngressPolicy": False}


def test_program_output_has_no_route_around_the_waypoint_and_no_finding():
    manifests = run().applied()
    assert analyze(manifests) == []
    matrix = access_matrix(manifests)
    assert [verdict.bypasses for _, _, verdict in matrix.entries()] == [()] * 4
    assert matrix.to_dict()["cells"] == {
        "rds-demo-1": {"istio-egress/postgres-1": "ALLOW", "istio-egress/postgres-2": "DENY"},
        "rds-demo-2": {"istio-egress/postgres-1": "DENY", "istio-egress/postgres-2": "ALLOW"},
    }


def test_program_without_bypass_protection_shows_the_bypasses():
    manifests = run(dev_values(bypassProtection=UNPROTECTED, egressLockdown={"enabled": False})).applied()
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
