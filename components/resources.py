"""Registering rendered manifests as pulumi-kubernetes resources, and the options children inherit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar, cast, overload

import pulumi
import pulumi_kubernetes as k8s

if TYPE_CHECKING:
    class CustomObject(k8s.apiextensions.CustomResource):
        """An object of a custom resource's kind (Istio's, the Gateway API's), as the stack creates it."""

        # Pulumi sets each input property on the resource as an Output; pulumi-kubernetes declares
        # these on its typed classes only. A read (`CustomResource.get`) has no input properties.
        metadata: pulumi.Output[dict[str, Any]]
        spec: pulumi.Output[Any]
else:
    CustomObject = k8s.apiextensions.CustomResource

_WithSpec: TypeAlias = (
    type[k8s.apps.v1.Deployment] | type[k8s.core.v1.Service] | type[k8s.core.v1.Pod] | type[k8s.networking.v1.NetworkPolicy]
    | type[k8s.admissionregistration.v1.ValidatingAdmissionPolicy]
    | type[k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding]
)
_MetadataOnly: TypeAlias = type[k8s.core.v1.Namespace] | type[k8s.core.v1.ServiceAccount]

KubernetesObject: TypeAlias = (
    k8s.apps.v1.Deployment | k8s.core.v1.Service | k8s.core.v1.Pod | k8s.networking.v1.NetworkPolicy
    | k8s.admissionregistration.v1.ValidatingAdmissionPolicy | k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding
    | k8s.core.v1.Namespace | k8s.core.v1.ServiceAccount | k8s.core.v1.Secret | CustomObject
)
"""What `kubernetes_object` registers: the typed class of a core kind, else a custom resource."""
KubernetesRead: TypeAlias = (
    k8s.core.v1.Namespace | k8s.core.v1.ServiceAccount | k8s.core.v1.Service | k8s.apps.v1.DaemonSet
    | k8s.apiextensions.v1.CustomResourceDefinition | k8s.apiextensions.CustomResource
)
"""What `kubernetes_read` reads an object as."""
KubernetesPatch: TypeAlias = k8s.core.v1.NamespacePatch
"""What `kubernetes_patch` registers."""

# Typed classes for core kinds give Pulumi's await logic (a Deployment waits for readiness, a
# LoadBalancer Service for its address) and secret handling for Secret data.
_WITH_SPEC: dict[tuple[str, str], _WithSpec] = {
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("v1", "Service"): k8s.core.v1.Service,
    ("v1", "Pod"): k8s.core.v1.Pod,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"): k8s.admissionregistration.v1.ValidatingAdmissionPolicy,
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"):
        k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding,
}
_METADATA_ONLY: dict[tuple[str, str], _MetadataOnly] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
}
# Objects the stack does not own: it manages only the fields it sets, and leaves the object.
_PATCHES: dict[tuple[str, str], type[KubernetesPatch]] = {
    ("v1", "Namespace"): k8s.core.v1.NamespacePatch,
}

T = TypeVar("T")
U = TypeVar("U")


def kubernetes_object(resource_name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> KubernetesObject:
    """Register `manifest` as the object it describes. Fields are passed as they are, so an Output
    in one field (a secret, a LoadBalancer's address) leaves every other field known in preview."""
    gvk = (manifest["apiVersion"], manifest["kind"])
    if gvk in _METADATA_ONLY:
        return _METADATA_ONLY[gvk](resource_name, metadata=manifest["metadata"], opts=opts)
    if gvk in _WITH_SPEC:
        return _WITH_SPEC[gvk](resource_name, metadata=manifest["metadata"], spec=manifest["spec"], opts=opts)
    if gvk == ("v1", "Secret"):
        return k8s.core.v1.Secret(
            resource_name, metadata=manifest["metadata"], type=manifest["type"],
            string_data=manifest["stringData"], opts=opts,
        )
    return CustomObject(
        resource_name, api_version=gvk[0], kind=gvk[1], metadata=manifest["metadata"], spec=manifest["spec"], opts=opts,
    )


def kubernetes_patch(resource_name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> KubernetesPatch:
    """Set the manifest's fields on an existing object without owning it (server-side apply)."""
    patch = _PATCHES[(manifest["apiVersion"], manifest["kind"])]
    return patch(resource_name, metadata=manifest["metadata"], opts=opts)


@overload
def kubernetes_read(resource_name: str, api_version: Literal["v1"], kind: Literal["Namespace"], object_id: str,
                    opts: pulumi.ResourceOptions) -> k8s.core.v1.Namespace: ...
@overload
def kubernetes_read(resource_name: str, api_version: Literal["v1"], kind: Literal["ServiceAccount"], object_id: str,
                    opts: pulumi.ResourceOptions) -> k8s.core.v1.ServiceAccount: ...
@overload
def kubernetes_read(resource_name: str, api_version: Literal["v1"], kind: Literal["Service"], object_id: str,
                    opts: pulumi.ResourceOptions) -> k8s.core.v1.Service: ...
@overload
def kubernetes_read(resource_name: str, api_version: Literal["apps/v1"], kind: Literal["DaemonSet"], object_id: str,
                    opts: pulumi.ResourceOptions) -> k8s.apps.v1.DaemonSet: ...
@overload
def kubernetes_read(resource_name: str, api_version: Literal["apiextensions.k8s.io/v1"],
                    kind: Literal["CustomResourceDefinition"], object_id: str,
                    opts: pulumi.ResourceOptions) -> k8s.apiextensions.v1.CustomResourceDefinition: ...
@overload
def kubernetes_read(resource_name: str, api_version: str, kind: str, object_id: str,
                    opts: pulumi.ResourceOptions) -> KubernetesRead: ...
def kubernetes_read(resource_name: str, api_version: str, kind: str, object_id: str,
                    opts: pulumi.ResourceOptions) -> KubernetesRead:
    """Read an existing object. Reads run in preview too, so a missing one stops the program
    before anything is created (the provider reports that it does not exist)."""
    if (api_version, kind) == ("v1", "Namespace"):
        return k8s.core.v1.Namespace.get(resource_name, object_id, opts=opts)
    if (api_version, kind) == ("v1", "ServiceAccount"):
        return k8s.core.v1.ServiceAccount.get(resource_name, object_id, opts=opts)
    if (api_version, kind) == ("v1", "Service"):
        return k8s.core.v1.Service.get(resource_name, object_id, opts=opts)
    if (api_version, kind) == ("apps/v1", "DaemonSet"):
        return k8s.apps.v1.DaemonSet.get(resource_name, object_id, opts=opts)
    if (api_version, kind) == ("apiextensions.k8s.io/v1", "CustomResourceDefinition"):
        return k8s.apiextensions.v1.CustomResourceDefinition.get(resource_name, object_id, opts=opts)
    # The SDK leaves `get`'s return unannotated; it returns a CustomResource.
    custom: k8s.apiextensions.CustomResource = k8s.apiextensions.CustomResource.get(
        resource_name, api_version=api_version, kind=kind, id=object_id, opts=opts)
    return custom


def derived(value: pulumi.Input[T], derive: Callable[[T], U]) -> U | pulumi.Output[U]:
    """`derive(value)` now when the value is known up front, else once it resolves.

    Names from the config are plain; only deploy-time values (a LoadBalancer's address) need the
    Output machinery, which is most of the program's cost at scale (docs/profile.md).
    """
    if isinstance(value, pulumi.Output):
        return value.apply(derive)
    return derive(value)  # type: ignore[arg-type]


def child_options(
    parent: pulumi.Resource,
    opts: pulumi.ResourceOptions | None,
    *,
    depends_on: Sequence[pulumi.Input[pulumi.Resource] | None] = (),
    retain_on_delete: bool | None = None,
    custom_timeouts: pulumi.CustomTimeouts | None = None,
) -> pulumi.ResourceOptions:
    """Options for a component's child.

    `parent` passes the providers and `protect`; Pulumi passes nothing else of a component's
    options to its children. So the component's `depends_on` goes to every child (a program that
    installs Istio in the same stack orders it first), and its `retain_on_delete`,
    `custom_timeouts` and `deleted_with` too, unless the child sets its own because it needs it.
    """
    given = opts or pulumi.ResourceOptions()
    inherited: list[pulumi.Input[pulumi.Resource]]
    if given.depends_on is None:
        inherited = []
    elif isinstance(given.depends_on, list):
        inherited = given.depends_on
    elif isinstance(given.depends_on, pulumi.Resource):
        inherited = [given.depends_on]
    else:
        # Passed whole, as Pulumi's own merge does: an Output or awaitable of one resource is a
        # dependency. Its type also admits one of a list, which Pulumi refuses (as it does a tuple).
        inherited = [cast("pulumi.Input[pulumi.Resource]", given.depends_on)]
    return pulumi.ResourceOptions(
        parent=parent,
        depends_on=[*inherited, *(resource for resource in depends_on if resource is not None)],
        retain_on_delete=retain_on_delete if retain_on_delete is not None else given.retain_on_delete,
        custom_timeouts=custom_timeouts if custom_timeouts is not None else given.custom_timeouts,
        deleted_with=given.deleted_with,
    )
