"""IstioAmbient and GatewayApiCrds: the mesh itself, for a stack that brings its own.

Off by default: most clusters have Istio installed and upgraded by whoever runs the mesh. A stack
that installs them gives its other components `depends_on` on these, so nothing that needs the
mesh is created before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from . import manifests
from .names import dns_label_problem
from .resources import child_options
from .values import DEFAULT_ISTIO_NAMESPACE

ISTIO_TYPE_TOKEN = "ambient-egress:index:IstioAmbient"
GATEWAY_API_TYPE_TOKEN = "ambient-egress:index:GatewayApiCrds"


@dataclass(frozen=True, kw_only=True)
class IstioAmbientArgs:
    version: str
    """The Istio release to install, e.g. "1.30.3": every chart is pinned to it."""
    namespace: str = DEFAULT_ISTIO_NAMESPACE
    access_logs: bool = True
    """Envoy access logs on every proxy (`meshConfig.accessLogFile`)."""

    def __post_init__(self) -> None:
        parts = self.version.split(".")
        if len(parts) != 3 or not all(part.isdigit() for part in parts):
            raise ValueError(f"IstioAmbientArgs.version: name a release such as 1.30.3 (got {self.version!r})")
        if problem := dns_label_problem(self.namespace):
            raise ValueError(f"IstioAmbientArgs.namespace: {self.namespace!r} {problem}")


class IstioAmbient(pulumi.ComponentResource):
    """Istio in ambient mode from its Helm charts, one release each, each waiting for the one before."""

    releases: dict[str, k8s.helm.v3.Release]

    def __init__(self, name: str, args: IstioAmbientArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(ISTIO_TYPE_TOKEN, name, None, opts)
        self.releases = {}
        previous: list[pulumi.Resource] = []
        for chart, release_name in manifests.ISTIO_CHARTS.items():
            release = k8s.helm.v3.Release(
                f"{name}/{chart}",
                name=release_name,
                chart=chart,
                version=args.version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=manifests.ISTIO_CHART_REPOSITORY),
                namespace=args.namespace,
                create_namespace=chart == "base",
                values=manifests.istio_chart_values(chart, args.version, access_logs=args.access_logs),
                opts=child_options(self, opts, depends_on=previous),
            )
            self.releases[chart] = release
            previous = [release]
        self.register_outputs({})


@dataclass(frozen=True, kw_only=True)
class GatewayApiCrdsArgs:
    version: str
    """The Gateway API release, e.g. "v1.4.0"."""
    channel: str = "standard"


class GatewayApiCrds(pulumi.ComponentResource):
    """The Gateway API CRDs from the release's manifest."""

    def __init__(self, name: str, args: GatewayApiCrdsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(GATEWAY_API_TYPE_TOKEN, name, None, opts)
        k8s.yaml.v2.ConfigFile(f"{name}/crds", file=manifests.gateway_api_crds_url(args.version, channel=args.channel),
                               opts=child_options(self, opts))
        self.register_outputs({})
