"""Optional bootstrap: Istio ambient from its Helm charts and the Gateway API CRDs, pinned, installed
first, with everything else waiting for them (seeds 002 and 004 install both by hand)."""

from __future__ import annotations

import itertools

import pytest

from stack import ConfigError, parse_config

from .support import P, dev_values, run

RELEASE = "kubernetes:helm.sh/v3:Release"
CHART_REPOSITORY = "https://istio-release.storage.googleapis.com/charts"


def releases(program) -> dict[str, dict]:
    return {resource.name: resource.inputs for resource in program.of_type(RELEASE)}


@pytest.fixture(scope="module")
def bootstrapped():
    return run(dev_values(istio={"install": True, "version": "1.30.3"}, gatewayApi={"install": True, "version": "v1.4.0"}))


def test_istio_installs_from_its_four_ambient_charts_pinned_to_the_version_in_order(bootstrapped):
    installed = releases(bootstrapped)
    assert [(inputs["chart"], inputs["name"]) for inputs in installed.values()] == [
        ("base", "istio-base"), ("istiod", "istiod"), ("cni", "istio-cni"), ("ztunnel", "ztunnel")]
    assert {(inputs["version"], inputs["namespace"], inputs["repositoryOpts"]["repo"]) for inputs in installed.values()} == {
        ("1.30.3", "istio-system", CHART_REPOSITORY)}
    assert [inputs["createNamespace"] for inputs in installed.values()] == [True, False, False, False]
    chain = list(installed)
    for before, after in itertools.pairwise(chain):
        assert before in bootstrapped.dependencies[after], (before, after)


def test_the_control_plane_and_cni_run_the_ambient_profile_with_access_logs(bootstrapped):
    installed = releases(bootstrapped)
    assert installed["egress/istio/istiod"]["values"] == {"profile": "ambient", "meshConfig": {"accessLogFile": "/dev/stdout"}}
    assert installed["egress/istio/cni"]["values"] == {"profile": "ambient"}
    assert installed["egress/istio/ztunnel"]["values"] == {}


def test_istio_1_24_turns_on_dns_capture_and_ip_auto_allocation_which_later_versions_default_to():
    installed = releases(run(dev_values(istio={"install": True, "version": "1.24.6"})))
    assert installed["egress/istio/istiod"]["values"]["env"] == {"PILOT_ENABLE_IP_AUTOALLOCATE": "true"}
    assert installed["egress/istio/cni"]["values"]["ambient"] == {"dnsCapture": True}


def test_the_gateway_api_crds_come_from_the_pinned_standard_channel_release_before_istio(bootstrapped):
    [crds] = bootstrapped.of_type("kubernetes:yaml/v2:ConfigFile")
    assert crds.inputs["file"] == ("https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.0/"
                                   "standard-install.yaml")
    assert crds.name in bootstrapped.dependencies["egress/istio/base"]


@pytest.mark.parametrize("resource", [
    "egress/egress-gateway/waypoint", "egress/egress-gateway/namespace",
    "egress/database/postgres-1/external-service/service-entry",
    "egress/database/postgres-1/external-service/allow-nothing", "egress/grant/rds-demo-1/policy/postgres-1",
    "egress/database/postgres-1/deployment",
])
def test_everything_the_stack_deploys_waits_for_what_it_installs(bootstrapped, resource):
    assert {"egress/gateway-api/crds", "egress/istio/ztunnel"} <= bootstrapped.dependencies[resource]


def test_what_the_stack_installs_is_not_read_as_a_prerequisite(bootstrapped):
    assert bootstrapped.reads() == []


def test_with_only_the_gateway_api_installed_istio_is_still_read_as_a_prerequisite():
    program = run(dev_values(gatewayApi={"install": True}))
    read = {resource.name.split(":")[0] for resource in program.reads()}
    assert "egress/prerequisites/ztunnel" in read
    assert not any("gateway.networking.k8s.io" in name for name in read)
    assert program.of_type(RELEASE) == []


def test_nothing_is_installed_by_default():
    program = run()
    assert program.of_type(RELEASE) == [] and program.of_type("kubernetes:yaml/v2:ConfigFile") == []


@pytest.mark.parametrize(("istio", "words"), [
    ({"install": True, "version": "1.30"}, 'must name a release to install, such as "1.30.0"'),
    ({"install": True, "version": "1.23.2"}, "must be between 1.24"),
    ({"version": "latest"}, 'must be an Istio version such as "1.30" or "1.30.3"'),
])
def test_an_install_needs_a_release_it_can_pin(istio, words):
    with pytest.raises(ConfigError) as raised:
        parse_config({"databases": [], "istio": istio})
    assert words in raised.value.problems[0]
    assert raised.value.problems[0].startswith(f"{P}istio.version: ")
