"""Seeds 001 and 003, the sidecar-mode egress examples, as their authors wrote the manifests
(tests/analysis/seeds/001-*.yaml, 003-*.yaml), analysed with the mesh's outboundTrafficPolicy the
seeds install (REGISTRY_ONLY), give the verdicts the seeds' transcripts report: a 200 is reachable
(OPEN where the gateway has no ALLOW policy, as in every one of seed 001's steps), a 403 or a 502 is
DENY.

Upstream: ../shared/seeds/001_3db8e0e1c16653f6.txt ("Enforcing Egress traffic using Istio's
authorization policies") and ../shared/seeds/003_ec4bc812f04b663e.txt (exportTo and the Sidecar
resource); semantics cited in analysis/sidecar.py and analysis/egress_gateway.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis import access_matrix, load_manifests

SEEDS = Path(__file__).resolve().parent / "seeds"
REACHABLE, FORBIDDEN = "OPEN", "DENY"


def cells(*files: str) -> dict[str, dict[str, str]]:
    manifests = [manifest for name in files for manifest in load_manifests(SEEDS / name)]
    return access_matrix(manifests, outbound_traffic_policy="REGISTRY_ONLY").to_dict()["cells"]


# Seed 001, before the gateway: the registry alone


def test_seed_001_a_service_entry_exported_to_its_own_namespace_lets_only_that_namespace_out():
    found = cells("001-clients.yaml", "001-registry.yaml")
    assert found["default"] == dict.fromkeys(
        ["default/external-developers-google-com:443", "default/external-developers-google-com:80"], REACHABLE)
    assert found["otherns"] == dict.fromkeys(
        ["default/external-developers-google-com:443", "default/external-developers-google-com:80"], FORBIDDEN)


# Seed 001, HTTP through the egress gateway: clients curl http:// (port 80)

HTTP = ("001-clients.yaml", "001-http-via-gateway.yaml")
GOOGLE, YAHOO = "istio-system/google:80", "istio-system/yahoo:80"


def port_80(found: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {client: {label: verdict for label, verdict in row.items() if label.endswith(":80")} for client, row in found.items()}


def test_seed_001_routed_through_the_gateway_without_policies_both_hosts_are_reachable():
    assert port_80(cells(*HTTP)) == {client: {GOOGLE: REACHABLE, YAHOO: REACHABLE} for client in ("default", "otherns")}


def test_seed_001_allow_nothing_forbids_every_request_through_the_gateway():
    assert port_80(cells(*HTTP, "001-allow-nothing.yaml")) == {
        client: {GOOGLE: FORBIDDEN, YAHOO: FORBIDDEN} for client in ("default", "otherns")
    }


def test_seed_001_port_443_has_no_route_to_the_gateway_so_its_policies_never_see_it():
    """Not in the seed's transcript: a client dialling https:// goes straight to the host, which the
    ServiceEntry's HTTPS port makes known to its sidecar, whatever the gateway allows."""
    found = cells(*HTTP, "001-allow-nothing.yaml")
    assert {found[client]["istio-system/google:443"] for client in ("default", "otherns")} == {REACHABLE}
    reason = access_matrix([m for f in HTTP for m in load_manifests(SEEDS / f)]).reason("default", "istio-system/google:443")
    assert "it goes straight out to developers.google.com itself (no route of VirtualService " in reason


def test_seed_001_deny_policies_by_namespace_and_sni():
    assert port_80(cells(*HTTP, "001-deny-by-namespace.yaml")) == {
        "default": {GOOGLE: REACHABLE, YAHOO: FORBIDDEN},
        "otherns": {GOOGLE: FORBIDDEN, YAHOO: REACHABLE},
    }


def test_seed_001_deny_policies_by_principal_and_sni():
    assert port_80(cells(*HTTP, "001-deny-by-principal.yaml")) == {
        "default": {GOOGLE: REACHABLE, YAHOO: REACHABLE},
        "otherns": {GOOGLE: REACHABLE, YAHOO: REACHABLE},  # sleep, running as an account no policy names
        "otherns/sa/sleep-google": {GOOGLE: REACHABLE, YAHOO: FORBIDDEN},
        "otherns/sa/sleep-yahoo": {GOOGLE: FORBIDDEN, YAHOO: REACHABLE},
    }


def test_seed_001_the_deny_reason_names_the_policy_the_gateways_log_names():
    matrix = access_matrix([m for f in (*HTTP, "001-deny-by-namespace.yaml") for m in load_manifests(SEEDS / f)],
                           outbound_traffic_policy="REGISTRY_ONLY")
    # The seed's log: rbac_access_denied_matched_policy[ns[istio-system]-policy[external-deny-developer-yahoo-com]-rule[0]]
    assert matrix.reason("default", YAHOO).startswith("denied by istio-system/external-deny-developer-yahoo-com")


# Seed 001, TLS from the client: the sidecar matches its SNI and wraps it in mutual TLS to the gateway


def test_seed_001_tls_origination_with_principals_and_sni():
    assert cells("001-clients.yaml", "001-tls-via-gateway.yaml", "001-deny-by-principal.yaml") == {
        "default": {"istio-system/google": REACHABLE, "istio-system/yahoo": REACHABLE},
        "otherns": {"istio-system/google": REACHABLE, "istio-system/yahoo": REACHABLE},
        "otherns/sa/sleep-google": {"istio-system/google": REACHABLE, "istio-system/yahoo": FORBIDDEN},
        "otherns/sa/sleep-yahoo": {"istio-system/google": FORBIDDEN, "istio-system/yahoo": REACHABLE},
    }


# Seed 003: exportTo and the Sidecar resource under REGISTRY_ONLY

DEBIAN = "default/debian-org"


@pytest.mark.parametrize(
    ("files", "newguy"),
    [
        pytest.param(("003-debian.yaml",), REACHABLE, id="exported everywhere by default"),
        pytest.param(("003-debian.yaml", "003-export-to-own-namespace.yaml"), FORBIDDEN, id="exportTo ."),
        pytest.param(("003-debian.yaml", "003-newguy-sidecar.yaml"), FORBIDDEN, id="Sidecar without the hosts"),
        # The seed applies its last Sidecar with exportTo "." still in place, which keeps newguy from the
        # hosts whatever its Sidecar imports: its "apt update now runs successfully" holds only once
        # the exportTo change is reverted, as here.
        pytest.param(("003-debian.yaml", "003-newguy-sidecar-debian.yaml"), REACHABLE, id="Sidecar with the hosts"),
        pytest.param(("003-debian.yaml", "003-export-to-own-namespace.yaml", "003-newguy-sidecar-debian.yaml"),
                     FORBIDDEN, id="Sidecar with the hosts, exportTo . kept"),
    ],
)
def test_seed_003_newguy_reaches_the_debian_mirrors_only_when_exported_to_and_imported(files, newguy):
    assert cells(*files) == {"default": {DEBIAN: REACHABLE}, "newguy": {DEBIAN: newguy}}


def test_seed_003_under_allow_any_the_hidden_hosts_still_go_out():
    """The seed's first step: before REGISTRY_ONLY, a host the sidecar does not know is passed through."""
    manifests = [m for f in ("003-debian.yaml", "003-export-to-own-namespace.yaml") for m in load_manifests(SEEDS / f)]
    assert access_matrix(manifests).decision("newguy", DEBIAN).value == REACHABLE
