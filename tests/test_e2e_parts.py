"""The parts of `make e2e` that need no fake: the streamed step runner (real processes), MetalLB's
address pool, and the CI workflow and walkthrough pinning what the run checks for."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tools.e2e.load_balancers import METALLB_VERSION, NoAddressPool, address_pool, pool_manifests
from tools.e2e.prerequisites import KIND_VERSION, KUBECTL_VERSION
from tools.e2e.processes import StreamingExecutor

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "e2e.yml"
WALKTHROUGH = ROOT / "docs" / "kind.md"


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")
def test_a_step_s_output_is_shown_as_it_comes_and_kept_with_its_exit_code():
    shown = io.StringIO()

    run = StreamingExecutor(shown).run(["sh", "-c", "echo pulling; echo 'error: no space left' >&2; exit 3"], 30)

    assert shown.getvalue() == "pulling\nerror: no space left\n"
    assert (run.exit_code, run.stdout) == (3, "pulling\nerror: no space left\n")


def test_a_step_whose_command_is_missing_says_so():
    run = StreamingExecutor(io.StringIO()).run(["no-such-command-for-e2e"], 30)

    assert run.not_found and "no-such-command-for-e2e: command not found" in run.stderr


@pytest.mark.parametrize("ipam, pool", [
    ('[{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"},{"Subnet":"fc00:f853:ccd:e793::/64"}]',
     ("172.18.255.200", "172.18.255.250")),
    ('[{"Subnet":"fc00:f853:ccd:e793::/64"},{"Subnet":"10.89.0.0/24"}]', ("10.89.0.200", "10.89.0.250")),
], ids=["docker-default", "ipv6-first-small-ipv4"])
def test_metallb_takes_fifty_addresses_from_the_top_of_the_kind_network_s_ipv4_subnet(ipam, pool):
    assert address_pool(ipam) == pool


@pytest.mark.parametrize("ipam, message", [
    ('[{"Subnet":"fc00:f853:ccd:e793::/64"}]', "no IPv4 subnet large enough for 50 addresses (subnets: fc00:f853:ccd:e793::/64)"),
    ('[{"Subnet":"172.30.0.0/28"}]', "(subnets: 172.30.0.0/28)"),
    ("Error: No such network: kind", "docker printed no JSON for the kind network"),
], ids=["ipv6-only", "too-small", "no-network"])
def test_a_kind_network_without_room_for_a_pool_is_refused_naming_what_it_offers(ipam, message):
    with pytest.raises(NoAddressPool, match=re.escape(message)):
        address_pool(ipam)


def test_the_pool_manifests_are_an_address_pool_and_its_layer_2_announcement():
    pool, announcement = yaml.safe_load_all(pool_manifests("172.18.255.200", "172.18.255.250"))

    assert (pool["kind"], pool["spec"]["addresses"]) == ("IPAddressPool", ["172.18.255.200-172.18.255.250"])
    assert (announcement["kind"], announcement["spec"]["ipAddressPools"]) == ("L2Advertisement", [pool["metadata"]["name"]])


def test_the_workflow_runs_make_e2e_on_dispatch_and_on_pull_requests_touching_the_program():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true

    assert "workflow_dispatch" in triggers
    assert {"components/**", "stack/**", "tools/**"} <= set(triggers["pull_request"]["paths"])
    job = workflow["jobs"]["e2e"]
    assert job["runs-on"] == "ubuntu-latest"
    assert [step["run"] for step in job["steps"] if "run" in step][-1] == "make e2e"


def test_the_workflow_installs_the_versions_the_run_and_the_walkthrough_name():
    env = yaml.safe_load(WORKFLOW.read_text())["jobs"]["e2e"]["env"]
    pulumi = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)

    assert pulumi is not None
    assert (env["KIND_VERSION"], env["KUBECTL_VERSION"], env["PULUMI_VERSION"]) == (KIND_VERSION, KUBECTL_VERSION, pulumi[1])
    walkthrough = WALKTHROUGH.read_text()
    for version in (KIND_VERSION, KUBECTL_VERSION, pulumi[1], METALLB_VERSION):
        assert version in walkthrough
