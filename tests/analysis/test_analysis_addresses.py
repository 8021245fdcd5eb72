"""A ServiceEntry's addresses and resolution, release by release: what ztunnel captures, and what
the waypoint can forward.

Upstream (istio/istio at 86c9f01 unless a tag is named):
  pilot/pkg/networking/serviceentry/ip_autoallocation.go  shouldV2AutoAllocateIPFromPieces: no address
      is allocated for `resolution: NONE`, nor with `networking.istio.io/enable-autoallocate-ip: "false"`
  pilot/pkg/serviceregistry/ambient/services_test.go  TestServiceEntryServices "Does not use auto-assigned
      addresses none resolution", "... user opted out", "Service entry with CIDR address",
      "Service entry with single-IP CIDR address"
  pilot/pkg/serviceregistry/kube/controller/ambient/services.go at tag 1.29.0: a ServiceEntry whose
      address is a CIDR (toNetworkAddressFromCidr fails) yields no ambient service; release note
      59797.yaml adds CIDRs in 1.30
  release note 57656.yaml: before 1.28 a `resolution: NONE` ServiceEntry at a waypoint had "a VIP but
      no endpoints, which would result in a no healthy upstream error"; from 1.28 it passes through
  ztunnel src/proxy/outbound.rs: traffic to an address no service claims is passed straight through
"""

from __future__ import annotations

import pytest

from analysis import Code, Decision, ObjectRef, Request, access_matrix, analyze, evaluate

ALLOW, DENY, OPEN = Decision.ALLOW, Decision.DENY, Decision.OPEN


def manifests_with(k8s, service_entry):
    """rds-demo-1 granted postgres-1, rds-demo-2 not; `service_entry` is postgres-1."""
    grant = k8s.grant("postgres-1", "rds-demo-1")
    return k8s.one_database(
        k8s.allow_nothing("postgres-1"), grant, service_entry=service_entry, clients=("rds-demo-1", "rds-demo-2")
    )


def decide(manifests, source="rds-demo-1", istio_version="1.30"):
    request = Request(source, ObjectRef("istio-egress", "postgres-1"), 5432)
    return evaluate(manifests, request, istio_version=istio_version)


def codes(manifests, istio_version="1.30"):
    return [finding.code for finding in analyze(manifests, istio_version=istio_version)]


def with_spec(manifest, **spec):
    manifest["spec"].update(spec)
    return manifest


# CIDR addresses


@pytest.mark.parametrize(("version", "expected"), [("1.29", OPEN), ("1.30", DENY), ("1.31", DENY)])
def test_cidr_address_drops_the_service_entry_from_ambient_before_1_30(k8s, version, expected):
    ranged = k8s.service_entry("postgres-1", host="db.example.com", addresses=("10.1.0.0/24",))
    assert decide(manifests_with(k8s, ranged), "rds-demo-2", istio_version=version).decision is expected


def test_dropped_service_entry_says_why_and_is_reported(k8s):
    ranged = k8s.service_entry("postgres-1", host="db.example.com", addresses=("10.1.0.1", "10.1.0.0/24"))
    manifests = manifests_with(k8s, ranged)
    verdict = decide(manifests, "rds-demo-2", istio_version="1.29.4")
    assert verdict.reason == (
        "ServiceEntry istio-egress/postgres-1 lists CIDR 10.1.0.0/24 in spec.addresses, which Istio 1.29.4 does "
        "not support in ambient (1.30.0 does), so it is left out of ambient and bound to no waypoint"
    )
    assert Code.DROPPED_FROM_AMBIENT in codes(manifests, "1.29.4")
    assert Code.DROPPED_FROM_AMBIENT not in codes(manifests, "1.30")


def test_single_ip_cidr_is_an_address_on_every_release(k8s):
    single = k8s.service_entry("postgres-1", host="db.example.com", addresses=("10.1.0.1/32",))
    assert decide(manifests_with(k8s, single), "rds-demo-2", istio_version="1.24").decision is DENY


def test_cidr_left_out_of_ambient_opens_no_route_around_the_waypoint_either(k8s):
    # Not bound, the whole ServiceEntry is OPEN: there is no waypoint to go around.
    ranged = k8s.service_entry("postgres-1", host="10.1.0.9.nip.io", addresses=("10.1.0.0/24",))
    matrix = access_matrix(manifests_with(k8s, ranged), istio_version="1.29")
    verdict = matrix.verdict("rds-demo-2", "istio-egress/postgres-1")
    assert (verdict.decision, verdict.bypasses) == (OPEN, ())


# resolution NONE


def test_resolution_none_without_addresses_is_never_captured(k8s):
    unaddressed = with_spec(k8s.service_entry("postgres-1", host="db.example.com"), resolution="NONE")
    manifests = manifests_with(k8s, unaddressed)
    verdict = decide(manifests, "rds-demo-2")
    assert verdict.decision is OPEN
    assert "has no spec.addresses and resolution NONE, which gets no allocated address" in verdict.reason
    assert Code.NO_ADDRESS_TO_CAPTURE in codes(manifests)


def test_auto_allocation_turned_off_without_addresses_is_never_captured(k8s):
    opted_out = k8s.service_entry("postgres-1", host="db.example.com")
    opted_out["metadata"]["labels"]["networking.istio.io/enable-autoallocate-ip"] = "False"
    assert decide(manifests_with(k8s, opted_out), "rds-demo-2").decision is OPEN


@pytest.mark.parametrize(
    ("version", "granted", "denied"),
    [("1.27", DENY, DENY), ("1.28", ALLOW, DENY), ("1.30", ALLOW, DENY)],
)
def test_resolution_none_with_addresses_passes_through_the_waypoint_from_1_28(k8s, version, granted, denied):
    passthrough = with_spec(
        k8s.service_entry("postgres-1", host="db.example.com", addresses=("10.1.0.1",)), resolution="NONE"
    )
    manifests = manifests_with(k8s, passthrough)
    assert decide(manifests, "rds-demo-1", istio_version=version).decision is granted
    assert decide(manifests, "rds-demo-2", istio_version=version).decision is denied


def test_resolution_none_before_1_28_says_every_connection_fails_and_is_reported(k8s):
    passthrough = with_spec(
        k8s.service_entry("postgres-1", host="db.example.com", addresses=("10.1.0.1",)), resolution="NONE"
    )
    manifests = manifests_with(k8s, passthrough)
    reason = decide(manifests, "rds-demo-1", istio_version="1.27").reason
    assert reason.startswith("the waypoint has no endpoint for a resolution: NONE ServiceEntry on Istio 1.27")
    assert reason.endswith("policies: ALLOW, allowed by istio-egress/allow-postgres-1-from-rds-demo-1")
    assert Code.NO_UPSTREAM_AT_WAYPOINT in codes(manifests, "1.27")
    assert Code.NO_UPSTREAM_AT_WAYPOINT not in codes(manifests, "1.28")
