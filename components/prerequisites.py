"""MeshPrerequisites: what the cluster must already have, read before anything is created.

Reads run during `pulumi preview` as well as `pulumi up`, and a read of a missing object fails the
run there, before any resource is created. Every other component of a stack depends on this one,
so nothing is created until Istio's CRDs, the waypoint GatewayClass and ztunnel are all there and
Istio is recent enough.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from .resources import child_options, kubernetes_read
from .values import DEFAULT_ISTIO_NAMESPACE, EgressGatewayRef

TYPE_TOKEN = "ambient-egress:index:MeshPrerequisites"

MINIMUM_ISTIO_VERSION = (1, 24)
"""AuthorizationPolicy `targetRefs` to a ServiceEntry, which every grant is, came with Istio 1.24."""
WAYPOINT_CLASS = "istio-waypoint"
ZTUNNEL = "ztunnel"

# How to put each missing piece in place. A read that fails stops the run with the engine's "does not
# exist" and the read's name, so the name says what is missing and what installs it.
INSTALL_ISTIO = "install Istio 1.24+ in ambient mode"
INSTALL_GATEWAY_API = "install the Gateway API CRDs, standard channel"

CUSTOM_RESOURCE_DEFINITIONS: Mapping[str, str] = {
    "gateways.gateway.networking.k8s.io": INSTALL_GATEWAY_API,
    "gatewayclasses.gateway.networking.k8s.io": INSTALL_GATEWAY_API,
    "httproutes.gateway.networking.k8s.io": INSTALL_GATEWAY_API,
    "serviceentries.networking.istio.io": INSTALL_ISTIO,
    "destinationrules.networking.istio.io": INSTALL_ISTIO,
    "authorizationpolicies.security.istio.io": INSTALL_ISTIO,
    "telemetries.telemetry.istio.io": INSTALL_ISTIO,
    "gateways.networking.istio.io": INSTALL_ISTIO,
    "virtualservices.networking.istio.io": INSTALL_ISTIO,
    "sidecars.networking.istio.io": INSTALL_ISTIO,
}
"""Every CustomResourceDefinition a stack may use, and what installs it."""


@dataclass(frozen=True, kw_only=True)
class MeshPrerequisitesArgs:
    custom_resources: Sequence[str] = tuple(CUSTOM_RESOURCE_DEFINITIONS)
    """The CRDs the stack's objects need, e.g. `serviceentries.networking.istio.io`."""
    istio_namespace: str = DEFAULT_ISTIO_NAMESPACE
    """Where ztunnel runs (the namespace Istio's ztunnel chart was installed in)."""
    check_istio: bool = True
    """Read the GatewayClass and ztunnel and check Istio's version (ambient): not when the stack
    installs Istio, nor in sidecar mode."""
    egress_gateway: EgressGatewayRef | None = None
    """Sidecar mode: the egress gateway whose Service must exist."""
    minimum_istio_version: tuple[int, int] = MINIMUM_ISTIO_VERSION
    why_minimum: str = "AuthorizationPolicies that target a ServiceEntry would be ignored and nothing enforced"
    """What goes wrong on an older Istio, for the error that names the version found."""

    def __post_init__(self) -> None:
        unknown = [name for name in self.custom_resources if name not in CUSTOM_RESOURCE_DEFINITIONS]
        if unknown:
            raise ValueError(f"MeshPrerequisitesArgs.custom_resources: no install advice for {', '.join(unknown)}")


class MeshPrerequisites(pulumi.ComponentResource):
    """Reads, in preview as in `up`: each CRD the stack uses, the `istio-waypoint` GatewayClass
    (istiod makes it when ambient is on) and the ztunnel DaemonSet, whose image tells the version."""

    istio_version: pulumi.Output[str]
    """The Istio version ztunnel runs, checked against the minimum."""
    ready: pulumi.Output[pulumi.Resource]
    """This component, once every check passed: give it in `depends_on` and nothing is created
    on a cluster that lacks what the stack needs."""

    def __init__(self, name: str, args: MeshPrerequisitesArgs | None = None, opts: pulumi.ResourceOptions | None = None):
        args = args or MeshPrerequisitesArgs()
        super().__init__(TYPE_TOKEN, name, None, opts)
        crds = [
            kubernetes_read(f"{name}/crd/{crd}: {CUSTOM_RESOURCE_DEFINITIONS[crd]}", "apiextensions.k8s.io/v1",
                            "CustomResourceDefinition", crd, child_options(self, opts))
            for crd in args.custom_resources
        ]
        if args.egress_gateway is not None:
            gateway = args.egress_gateway
            kubernetes_read(f"{name}/egress-gateway: install an Istio egress gateway (the istio/gateway chart)",
                            "v1", "Service", f"{gateway.namespace}/{gateway.service}", child_options(self, opts))
        if args.check_istio:
            kubernetes_read(f"{name}/gatewayclass/{WAYPOINT_CLASS}: {INSTALL_ISTIO}, which makes it",
                            "gateway.networking.k8s.io/v1", "GatewayClass", WAYPOINT_CLASS,
                            child_options(self, opts, depends_on=crds))
            ztunnel = kubernetes_read(f"{name}/ztunnel: {INSTALL_ISTIO}", "apps/v1", "DaemonSet",
                                      f"{args.istio_namespace}/{ZTUNNEL}", child_options(self, opts))
            where = f"DaemonSet {args.istio_namespace}/{ZTUNNEL}"
            self.istio_version = pulumi.Output.all(ztunnel.metadata, ztunnel.spec).apply(
                lambda values: checked_version(where, istio_version(*values), args.minimum_istio_version, args.why_minimum))
        else:
            self.istio_version = pulumi.Output.from_input("installed by this stack")
        self.ready = self.istio_version.apply(lambda _: self)
        self.register_outputs({"istio_version": self.istio_version})


_VERSION = re.compile(r"^v?(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?")


def istio_version(metadata: Mapping[str, Any] | None, spec: Mapping[str, Any] | None) -> str | None:
    """The version ztunnel runs: its image tag (`istio/ztunnel:1.28.0-distroless`), else the label
    Istio's charts and istioctl both set (`app.kubernetes.io/version`)."""
    template = (spec or {}).get("template") or {}
    images = [str(container.get("image", "")) for container in (template.get("spec") or {}).get("containers") or []]
    tags = [image.rpartition("/")[2].partition("@")[0].partition(":")[2] for image in images]
    label = ((metadata or {}).get("labels") or {}).get("app.kubernetes.io/version")
    for candidate in [*tags, str(label or "")]:
        match = _VERSION.match(candidate)
        if match:
            return ".".join(part for part in (match["major"], match["minor"], match["patch"]) if part is not None)
    return None


def checked_version(where: str, version: str | None, minimum: tuple[int, int], why: str) -> str:
    """`version` when it is at least `minimum`; an unknown version passes, since a custom image tag
    says nothing either way."""
    if version is None:
        pulumi.log.warn(f"{where}: cannot tell the Istio version from its image or labels; this stack needs "
                        f"Istio {minimum[0]}.{minimum[1]} or newer")
        return "unknown"
    match = _VERSION.match(version)
    assert match is not None
    if (int(match["major"]), int(match["minor"])) < minimum:
        raise pulumi.RunError(f"{where} runs Istio {version}, older than {minimum[0]}.{minimum[1]}: {why}")
    return version
