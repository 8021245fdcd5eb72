"""Turns a rendered manifest into the matching pulumi-kubernetes resource."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

# Typed classes for core kinds give Pulumi's await logic (a Deployment waits for readiness, a
# LoadBalancer Service for its address) and secret handling for Secret data.
_WITH_SPEC = {
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("v1", "Service"): k8s.core.v1.Service,
    ("v1", "Pod"): k8s.core.v1.Pod,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
}
_METADATA_ONLY = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
}


def kubernetes_object(
    resource_name: str,
    manifest: pulumi.Input[dict[str, Any]],
    opts: pulumi.ResourceOptions,
    *,
    api_version: str | None = None,
    kind: str | None = None,
) -> pulumi.CustomResource:
    """Register `manifest`; a manifest still being computed (an Output) names its kind up front."""
    if isinstance(manifest, dict):
        # Fields are passed as they are, so a secret nested in one field keeps the others plain.
        api_version, kind = manifest["apiVersion"], manifest["kind"]
        rendered: Any = manifest
    elif api_version is None or kind is None:
        raise TypeError(f"{resource_name}: a computed manifest needs api_version and kind")
    else:
        rendered = pulumi.Output.from_input(manifest)
    gvk = (api_version, kind)
    if gvk in _METADATA_ONLY:
        return _METADATA_ONLY[gvk](resource_name, metadata=rendered["metadata"], opts=opts)
    if gvk in _WITH_SPEC:
        return _WITH_SPEC[gvk](resource_name, metadata=rendered["metadata"], spec=rendered["spec"], opts=opts)
    if gvk == ("v1", "Secret"):
        return k8s.core.v1.Secret(
            resource_name, metadata=rendered["metadata"], type=rendered["type"],
            string_data=rendered["stringData"], opts=opts,
        )
    return k8s.apiextensions.CustomResource(
        resource_name, api_version=api_version, kind=kind,
        metadata=rendered["metadata"], spec=rendered["spec"], opts=opts,
    )


def render(builder: Callable[..., dict[str, Any]], *inputs: Any) -> dict[str, Any] | pulumi.Output[dict[str, Any]]:
    """Build a manifest now when every input is a plain value, else once the inputs resolve.

    Names from the config are plain; only deploy-time values (a LoadBalancer's address) need the
    Output machinery, which is most of the program's cost at scale (docs/profile.md).
    """
    if any(isinstance(value, pulumi.Output) for value in inputs):
        return pulumi.Output.all(*inputs).apply(lambda values: builder(*values))
    return builder(*inputs)


def child_options(parent: pulumi.Resource, opts: pulumi.ResourceOptions | None, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options for a component's child: it waits for what the component was told to wait for.

    Pulumi does not pass a component's `depends_on` to its children, and plain names carry no
    dependency of their own, so without this a ServiceEntry could be created before its waypoint.
    """
    inherited = opts.depends_on if opts is not None and opts.depends_on is not None else []
    inherited = inherited if isinstance(inherited, list) else [inherited]
    return pulumi.ResourceOptions(parent=parent, depends_on=[*inherited, *depends_on])
