"""TLS origination without name verification (EGW0601).

Upstream: pilot/pkg/networking/core/cluster_tls.go (the automatic SAN check, against the SNI, only
when `sni` is empty); istioctl analyze IST0128 (NoServerCertificateVerificationDestinationLevel)
and IST0129 (port level), which ask for caCertificates; this check asks for the name instead.
"""

from __future__ import annotations

import copy

import pytest

from analysis import Code, analyze
from tests.support import run, stack_values

HOST = "api.example.com"


def rule(tls: dict, *, where: str = "trafficPolicy") -> dict:
    spec: dict = {"host": HOST}
    if where == "trafficPolicy":
        spec["trafficPolicy"] = {"tls": tls}
    elif where == "port":
        spec["trafficPolicy"] = {"portLevelSettings": [{"port": {"number": 443}, "tls": tls}]}
    else:
        spec["subsets"] = [{"name": "v1", "trafficPolicy": {"tls": tls}}]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "api-tls", "namespace": "istio-egress"},
        "spec": spec,
    }


def tls_findings(*manifests) -> list[str]:
    return [f"{f.resource}: {f.message}" for f in analyze(list(manifests)) if f.code is Code.TLS_NAME_NOT_VERIFIED]


def test_sni_without_subject_alt_names_accepts_a_certificate_for_any_name():
    assert tls_findings(rule({"mode": "SIMPLE", "sni": HOST})) == [
        'DestinationRule istio-egress/api-tls: trafficPolicy.tls originates TLS (SIMPLE) but sets sni "api.example.com" '
        "with no subjectAltNames, which turns off the check of the certificate's name, so the waypoint accepts a "
        "server certificate for any name; set subjectAltNames to the host it dials"
    ]


NARROWED = [{"subjectAltNames": [HOST]}, {"caCertificates": "/etc/ca.pem"}, {"credentialName": "api-cacert"}]


@pytest.mark.parametrize("narrowed", NARROWED)
def test_subject_alt_names_or_a_narrower_ca_answer_it(narrowed):
    unverified = {"mode": "SIMPLE", "sni": HOST}
    assert len(tls_findings(rule(unverified))) == 1
    assert tls_findings(rule({**unverified, **narrowed})) == []


def test_without_sni_istio_checks_the_name_itself():
    assert len(tls_findings(rule({"mode": "SIMPLE", "sni": HOST}))) == 1
    assert tls_findings(rule({"mode": "SIMPLE"})) == []


def test_skipping_verification_is_reported_whatever_else_is_set():
    [finding] = tls_findings(rule({"mode": "MUTUAL", "subjectAltNames": [HOST], "insecureSkipVerify": True}))
    assert "originates TLS (MUTUAL) but sets insecureSkipVerify" in finding


@pytest.mark.parametrize("mode", ["DISABLE", "ISTIO_MUTUAL"])
def test_modes_that_originate_no_tls_of_their_own_are_not_judged(mode):
    assert len(tls_findings(rule({"mode": "SIMPLE", "sni": HOST}))) == 1
    assert tls_findings(rule({"mode": mode, "sni": HOST})) == []


@pytest.mark.parametrize(
    ("where", "written"),
    [("port", "trafficPolicy.portLevelSettings[0].tls (port 443)"), ("subset", "subsets[0].trafficPolicy.tls")],
)
def test_port_level_and_subset_settings_are_read_too(where, written):
    [finding] = tls_findings(rule({"mode": "SIMPLE", "sni": HOST}, where=where))
    assert f": {written} originates TLS" in finding


def test_the_programs_tls_origination_verifies_the_name():
    services = [{"name": "httpbin", "host": "httpbin.org", "ports": [{"number": 80, "protocol": "HTTP"}], "tlsOrigination": True}]
    [rendered] = [m for m in run(stack_values("prod", services=services), {}).applied() if m["kind"] == "DestinationRule"]
    assert tls_findings(rendered) == []
    without_names = copy.deepcopy(rendered)
    del without_names["spec"]["trafficPolicy"]["tls"]["subjectAltNames"]
    assert len(tls_findings(without_names)) == 1
