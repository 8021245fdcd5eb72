"""What the cluster must have is read before anything is created, in preview as in `up`: a missing
CRD, GatewayClass, ztunnel, namespace or service account, or an Istio too old to enforce, stops the
run with that piece named, and no resource is created."""

from __future__ import annotations

import pulumi
import pytest

from components.prerequisites import checked_version, istio_version
from tools.mock_engine import Cluster, ReadRefused, RecordingMocks, resolved, run_program

from .support import DEV_LOAD_BALANCERS, dev_values, run, stack_values

MISSING = [
    "CustomResourceDefinition/serviceentries.networking.istio.io",
    "CustomResourceDefinition/authorizationpolicies.security.istio.io",
    "CustomResourceDefinition/telemetries.telemetry.istio.io",
    "CustomResourceDefinition/gateways.gateway.networking.k8s.io",
    "CustomResourceDefinition/gatewayclasses.gateway.networking.k8s.io",
    "GatewayClass/istio-waypoint",
    "DaemonSet/istio-system/ztunnel",
]


def created(mocks_run_resources) -> list[str]:
    return [resource.name for resource in mocks_run_resources if resource.is_kubernetes and not resource.read]


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
@pytest.mark.parametrize("missing", MISSING)
def test_a_missing_prerequisite_stops_the_run_before_any_object_is_created(missing, preview):
    mocks = RecordingMocks(DEV_LOAD_BALANCERS, cluster=Cluster(missing={missing}))
    with pytest.raises(ReadRefused, match=missing.rsplit("/", 1)[1]):
        run_program(dev_values(), mocks, preview=preview)
    assert created(mocks.registered) == []


@pytest.mark.parametrize(("missing", "read"), [
    ("GatewayClass/istio-waypoint", "egress/prerequisites/gatewayclass/istio-waypoint: install Istio 1.24+ in ambient mode, "
                                    "which makes it"),
    ("DaemonSet/istio-system/ztunnel", "egress/prerequisites/ztunnel: install Istio 1.24+ in ambient mode"),
    ("CustomResourceDefinition/gateways.gateway.networking.k8s.io",
     "egress/prerequisites/crd/gateways.gateway.networking.k8s.io: install the Gateway API CRDs, standard channel"),
    ("CustomResourceDefinition/serviceentries.networking.istio.io",
     "egress/prerequisites/crd/serviceentries.networking.istio.io: install Istio 1.24+ in ambient mode"),
])
def test_the_failed_read_names_what_is_missing_and_what_installs_it(missing, read):
    # The engine prints the read's name beside its "does not exist".


    mocks = RecordingMocks(DEV_LOAD_BALANCERS, cluster=Cluster(missing={missing}))
    with pytest.raises(ReadRefused):
        run_program(dev_values(), mocks)
    assert mocks.refused == [read]


def test_a_granted_namespace_that_does_not_exist_stops_the_run_before_any_object_is_created():
    mocks = RecordingMocks({}, cluster=Cluster(missing={"Namespace/shop"}))
    with pytest.raises(ReadRefused, match='"shop"'):
        run_program(stack_values("prod"), mocks)
    assert "egress/grant/shop/namespace-labels" not in created(mocks.registered)
    assert not [name for name in created(mocks.registered) if name.startswith("egress/grant/shop/")]


def test_the_service_account_a_test_client_runs_as_must_exist_in_a_namespace_the_stack_does_not_own():
    mocks = RecordingMocks({}, cluster=Cluster(missing={"ServiceAccount/shop/checkout"}))
    with pytest.raises(ReadRefused, match="shop/checkout"):
        run_program(stack_values("prod", testClients=True), mocks)
    assert "egress/grant/shop/client" not in created(mocks.registered)


def test_crds_of_features_the_config_does_not_use_are_not_required():
    program = run(stack_values("prod"), {})
    read = {resource.name.rsplit("/", 1)[1].split(":")[0] for resource in program.reads() if "/crd/" in resource.name}
    assert "destinationrules.networking.istio.io" not in read
    assert "httproutes.gateway.networking.k8s.io" not in read
    services = {"services": [{"name": "httpbin", "host": "httpbin.org", "ports": [{"number": 80, "protocol": "HTTP"}],
                              "tlsOrigination": True, "requestHeaders": {"x-a": "b"}}]}
    program = run(stack_values("prod", **services), {})
    read = {resource.name.rsplit("/", 1)[1].split(":")[0] for resource in program.reads() if "/crd/" in resource.name}
    assert {"destinationrules.networking.istio.io", "httproutes.gateway.networking.k8s.io"} <= read


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_an_istio_older_than_1_24_stops_the_run_before_any_object_is_created(preview):
    mocks = RecordingMocks(DEV_LOAD_BALANCERS, cluster=Cluster(istio_version="1.23.2"))
    with pytest.raises(pulumi.RunError, match=r"runs Istio 1\.23\.2, older than 1\.24: the stack renders for "
                                              r"ambient-egress:istio\.version 1\.24"):
        run_program(dev_values(istio={"version": "1.24"}), mocks, preview=preview)
    assert created(mocks.registered) == []


def test_a_cluster_older_than_the_stacks_istio_version_stops_the_run_and_says_which_key_to_set():
    mocks = RecordingMocks(DEV_LOAD_BALANCERS, cluster=Cluster(istio_version="1.28.1"))
    with pytest.raises(pulumi.RunError, match=r"runs Istio 1\.28\.1, older than 1\.30: the stack renders for "
                                              r"ambient-egress:istio\.version 1\.30; set it to the cluster's version"):
        run_program(dev_values(), mocks)
    assert created(mocks.registered) == []


def test_the_istio_version_is_exported():
    program = run(dev_values(istio={"version": "1.28"}), cluster=Cluster(istio_version="1.28.1"))
    assert resolved(program.outputs["istioVersion"]) == "1.28.1"


@pytest.mark.parametrize(("metadata", "spec", "version"), [
    ({}, {"template": {"spec": {"containers": [{"image": "docker.io/istio/ztunnel:1.28.0-distroless"}]}}}, "1.28.0"),
    ({}, {"template": {"spec": {"containers": [{"image": "gcr.io/istio-release/ztunnel:1.24.6"}]}}}, "1.24.6"),
    ({"labels": {"app.kubernetes.io/version": "1.26.2"}},
     {"template": {"spec": {"containers": [{"image": "registry.local/ztunnel@sha256:abc"}]}}}, "1.26.2"),
    ({}, {"template": {"spec": {"containers": [{"image": "registry.local/ztunnel:custom"}]}}}, None),
])
def test_the_istio_version_is_read_from_the_ztunnel_image_else_its_version_label(metadata, spec, version):
    assert istio_version(metadata, spec) == version


def test_an_unknown_version_warns_and_proceeds_and_a_new_enough_one_passes():
    assert checked_version("ztunnel", "1.24.0", (1, 24), "why") == "1.24.0"
    assert checked_version("ztunnel", "1.30.3", (1, 24), "why") == "1.30.3"
    assert run(cluster=Cluster(istio_version=None)).manifests()
