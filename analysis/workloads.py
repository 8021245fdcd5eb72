"""The pods the manifests show, a Pod's or a workload's pod template, and the ones that leave
ztunnel's capture although their namespace is ambient.

A pod of an ambient namespace is not captured, and goes straight to whatever address it dials, when:
  - it is labelled `istio.io/dataplane-mode: none` (`label/labels.yaml`);
  - it is labelled `sidecar.istio.io/inject: "true"`: the injection webhook selects it
    (`object.sidecar-injector.istio.io` in `manifests/charts/istio-control/istio-discovery/templates/
    mutatingwebhook.yaml`), and ztunnel leaves pods with a sidecar to it. The sidecar's own egress
    rules are not modelled: its traffic counts as going straight out;
  - it runs in the host network (`hostNetwork: true`), which NetworkPolicy does not govern either
    (istio.io `ambient/usage/networkpolicy`).
And from Istio 1.25 (release note `54935.yaml`), a pod annotated `ambient.istio.io/dns-capture:
"false"` is captured but resolves names with the cluster's DNS, not ztunnel's: a DNS-named host
leads it to the real addresses, which no ServiceEntry claims and ztunnel passes through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .istio import Behaviour, Istio
from .manifests import Kind, MeshIndex, ObjectRef, Resource
from .mesh import DATAPLANE_MODE

POD = Kind("", "Pod")
# Where each kind keeps its pods' template; a Pod is its own.
_TEMPLATE_PATHS: Mapping[Kind, tuple[str, ...]] = {
    POD: (),
    **{Kind("apps", kind): ("template",) for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")},
    Kind("batch", "Job"): ("template",),
    Kind("batch", "CronJob"): ("jobTemplate", "spec", "template"),
}
# What a pod runs as without `serviceAccountName`.
DEFAULT_SERVICE_ACCOUNT = "default"
SIDECAR_INJECT = "sidecar.istio.io/inject"
DNS_CAPTURE = "ambient.istio.io/dns-capture"


class OptOut(Enum):
    # The values complete "its pods ...".
    NOT_CAPTURED = "are not captured by ztunnel"
    DNS_NOT_CAPTURED = "resolve names past ztunnel's DNS"


@dataclass(frozen=True)
class Workload:
    kind: Kind
    ref: ObjectRef
    labels: Mapping[str, str]  # its pods' own, as the template gives them
    annotations: Mapping[str, str]
    service_account: str
    host_network: bool

    @property
    def namespace(self) -> str:
        return self.ref.namespace

    def opt_out(self, istio: Istio) -> tuple[OptOut, str] | None:
        """How its pods leave capture, with what says so as written, if they do."""
        if self.host_network:
            return OptOut.NOT_CAPTURED, "hostNetwork: true"
        if self.labels.get(DATAPLANE_MODE) == "none":
            return OptOut.NOT_CAPTURED, f"{DATAPLANE_MODE}: none"
        if self.labels.get(SIDECAR_INJECT) == "true":
            return OptOut.NOT_CAPTURED, f'{SIDECAR_INJECT}: "true"'
        if self.annotations.get(DNS_CAPTURE) == "false" and istio.has(Behaviour.POD_DNS_CAPTURE_OPT_OUT):
            return OptOut.DNS_NOT_CAPTURED, f'{DNS_CAPTURE}: "false"'
        return None

    def __str__(self) -> str:
        return f"{self.kind.kind} {self.ref}"


def workloads(index: MeshIndex, namespace: str) -> tuple[Workload, ...]:
    """Every Pod and pod template of the namespace, sorted by kind and name; read once per index."""

    def build() -> tuple[Workload, ...]:
        found = (
            _workload(resource, path)
            for kind, path in sorted(_TEMPLATE_PATHS.items())
            for resource in index.in_namespace(kind, namespace)
        )
        return tuple(workload for workload in found if workload is not None)

    return index.derived(("workloads", namespace), build)


def _workload(resource: Resource, path: tuple[str, ...]) -> Workload | None:
    if not path:
        metadata: Mapping[str, Any] = {"labels": resource.labels, "annotations": resource.annotations}
        pod_spec: Mapping[str, Any] = resource.spec
    else:
        template: Any = resource.spec
        for key in path:
            template = template.get(key) if isinstance(template, Mapping) else None
        if not isinstance(template, Mapping):
            return None
        metadata, pod_spec = template.get("metadata") or {}, template.get("spec") or {}
    # `serviceAccount` is the deprecated spelling Kubernetes still honours.
    account = pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or DEFAULT_SERVICE_ACCOUNT
    return Workload(
        kind=resource.kind,
        ref=resource.ref,
        labels=metadata.get("labels") or {},
        annotations=metadata.get("annotations") or {},
        service_account=str(account),
        host_network=pod_spec.get("hostNetwork") is True,
    )
