"""Reading Kubernetes manifests and indexing them for lookups by kind, namespace and name."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml

Manifest = Mapping[str, Any]
Derived = TypeVar("Derived")


@dataclass(frozen=True, order=True)
class Kind:
    # The API group is part of the identity: Istio and the Gateway API both define a `Gateway`.
    group: str
    kind: str


NAMESPACE = Kind("", "Namespace")
SERVICE = Kind("", "Service")
GATEWAY = Kind("gateway.networking.k8s.io", "Gateway")
GATEWAY_CLASS = Kind("gateway.networking.k8s.io", "GatewayClass")
SERVICE_ENTRY = Kind("networking.istio.io", "ServiceEntry")
AUTHORIZATION_POLICY = Kind("security.istio.io", "AuthorizationPolicy")
NETWORK_POLICY = Kind("networking.k8s.io", "NetworkPolicy")
DESTINATION_RULE = Kind("networking.istio.io", "DestinationRule")
VALIDATING_ADMISSION_POLICY = Kind("admissionregistration.k8s.io", "ValidatingAdmissionPolicy")
VALIDATING_ADMISSION_POLICY_BINDING = Kind("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding")

_CLUSTER_SCOPED = {NAMESPACE, GATEWAY_CLASS, VALIDATING_ADMISSION_POLICY, VALIDATING_ADMISSION_POLICY_BINDING}
_MANIFEST_SUFFIXES = {".yaml", ".yml"}


@dataclass(frozen=True, order=True)
class ObjectRef:
    """A namespaced object's address; cluster-scoped objects have an empty namespace."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True)
class Resource:
    kind: Kind
    ref: ObjectRef
    labels: Mapping[str, str]
    spec: Mapping[str, Any]
    annotations: Mapping[str, str] = field(default_factory=dict)
    # What a live object reports (`kubectl get -o yaml`); rendered manifests have none.
    status: Mapping[str, Any] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.ref.namespace

    @property
    def name(self) -> str:
        return self.ref.name

    def __str__(self) -> str:
        return f"{self.kind.kind} {self.ref}"

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Resource:
        api_version = manifest.get("apiVersion", "")
        group = api_version.rpartition("/")[0]
        kind = Kind(group, manifest.get("kind", ""))
        metadata = manifest.get("metadata") or {}
        # `kubectl apply` without `-n` puts a namespaced object in `default`.
        namespace = "" if kind in _CLUSTER_SCOPED else metadata.get("namespace") or "default"
        return cls(
            kind=kind,
            ref=ObjectRef(namespace, metadata.get("name", "")),
            labels=metadata.get("labels") or {},
            spec=manifest.get("spec") or {},
            annotations=metadata.get("annotations") or {},
            status=manifest.get("status") or {},
        )


class MeshIndex:
    """Every resource of a manifest set, by kind and address; later duplicates replace earlier ones."""

    def __init__(self, manifests: Iterable[Manifest]) -> None:
        by_kind: dict[Kind, dict[ObjectRef, Resource]] = defaultdict(dict)
        for manifest in manifests:
            resource = Resource.from_manifest(manifest)
            by_kind[resource.kind][resource.ref] = resource
        self._by_kind = {kind: dict(sorted(resources.items())) for kind, resources in by_kind.items()}
        self._all = {kind: tuple(resources.values()) for kind, resources in self._by_kind.items()}
        self._by_namespace: dict[Kind, Mapping[str, tuple[Resource, ...]]] = {}
        self._derived: dict[Hashable, Any] = {}

    def derived(self, key: Hashable, compute: Callable[[], Derived]) -> Derived:
        """`compute()` the first time `key` is asked for, its result after that. The index never
        changes, so views of it (parsed policies, waypoint bindings) are worked out once rather
        than for every verdict that needs them."""
        if key not in self._derived:
            self._derived[key] = compute()
        return cast(Derived, self._derived[key])

    def get(self, kind: Kind, ref: ObjectRef) -> Resource | None:
        return self._by_kind.get(kind, {}).get(ref)

    def all(self, kind: Kind) -> tuple[Resource, ...]:
        """Sorted by namespace, then name."""
        return self._all.get(kind, ())

    def in_namespace(self, kind: Kind, namespace: str) -> tuple[Resource, ...]:
        """One namespace's objects of a kind, sorted by name; grouped once per kind."""
        if kind not in self._by_namespace:
            grouped: dict[str, list[Resource]] = defaultdict(list)
            for resource in self.all(kind):
                grouped[resource.namespace].append(resource)
            self._by_namespace[kind] = {name: tuple(resources) for name, resources in grouped.items()}
        return self._by_namespace[kind].get(namespace, ())

    def named(self, kind: Kind, name: str) -> tuple[Resource, ...]:
        """Every namespace's object of that name."""
        return tuple(resource for resource in self.all(kind) if resource.name == name)

    def namespace(self, name: str) -> Resource | None:
        return self.get(NAMESPACE, ObjectRef("", name))


Mesh = MeshIndex | Iterable[Manifest]


def as_index(mesh: Mesh) -> MeshIndex:
    """Lets the public entry points take either parsed manifests or an index built once."""
    return mesh if isinstance(mesh, MeshIndex) else MeshIndex(mesh)


def load_manifests(path: str | Path) -> list[dict[str, Any]]:
    """Every object in a YAML file, or in all *.yaml/*.yml files under a directory, in path order."""
    root = Path(path)
    if root.is_dir():
        files = sorted(file for file in root.rglob("*") if file.suffix in _MANIFEST_SUFFIXES and file.is_file())
    else:
        files = [root]
    return [manifest for file in files for manifest in _read_file(file)]


# libyaml's parser when PyYAML was built with it, which reads large manifest sets several times faster.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_file(file: Path) -> Iterator[dict[str, Any]]:
    with file.open(encoding="utf-8") as stream:
        for document in yaml.load_all(stream, Loader=_LOADER):
            if document is None:
                continue
            if not isinstance(document, dict):
                raise ValueError(f"{file}: expected a Kubernetes object, got {type(document).__name__}")
            yield from _expand_lists(document)


def _expand_lists(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    # `kubectl get -o yaml` wraps objects in `kind: List` (or `<Kind>List`); analyse the items.
    if document.get("kind", "").endswith("List") and "items" in document:
        for item in document["items"] or []:
            yield from _expand_lists(item)
    else:
        yield document
