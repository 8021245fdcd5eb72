"""Run the program on the mock engine with a stack file's config and write what it would apply.

The plan's root directory holds `manifests/` (only manifests, so `kubectl apply -f` takes it as
it is) and the reports beside it. Files are written deterministically: the same stack gives the
same bytes, so two plans compare with `diff`.
"""

from __future__ import annotations

import ipaddress
import itertools
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stack import PROJECT, StackConfig, StackFile
from tools.mock_engine import ProgramRun, RecordingMocks, run_program

try:  # libyaml writes large plans several times faster; the output is the same.
    _Dumper: type[yaml.SafeDumper] | type[yaml.CSafeDumper] = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Dumper = yaml.SafeDumper

# Stand-in LoadBalancer addresses come from the documentation ranges (RFC 5737), never routed:
# TEST-NET-3 from .10 (the dev stack's two), then TEST-NET-2 and TEST-NET-1.
DOCUMENTATION_NETWORKS = tuple(ipaddress.IPv4Network(net) for net in ("203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24"))
PLACEHOLDER_FIRST_HOST = 10
PLACEHOLDER_CAPACITY = sum(network.num_addresses - 2 for network in DOCUMENTATION_NETWORKS) - (PLACEHOLDER_FIRST_HOST - 1)
# Written into every plan directory, so a later plan empties only a directory a plan wrote.
PLAN_MARKER = ".ambient-egress-plan"

# `kubectl apply -f DIR` applies files in name order: namespaces first, admission before anything
# it judges, and each ServiceEntry's allow-nothing baseline before the ServiceEntry.
APPLY_ORDER = (
    ("00-namespaces.yaml", ("Namespace",)),
    ("05-namespace-labels.yaml", ("Namespace:labels",)),
    ("10-identities-and-secrets.yaml", ("ServiceAccount", "Secret")),
    ("15-admission.yaml", ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")),
    ("20-egress-gateway.yaml", ("Gateway", "Telemetry")),
    ("30-baseline-policies.yaml", ("AuthorizationPolicy:baseline",)),
    ("40-service-entries.yaml", ("ServiceEntry",)),
    ("45-sidecar-visibility.yaml", ("Sidecar",)),
    ("50-grant-policies.yaml", ("AuthorizationPolicy",)),
    ("55-traffic-rules.yaml", ("DestinationRule", "HTTPRoute", "Gateway.networking.istio.io", "VirtualService")),
    ("60-network-policies.yaml", ("NetworkPolicy",)),
    ("70-workloads.yaml", ("Deployment", "Service", "Pod")),
)


class PlanDirectoryError(Exception):
    """The output directory holds something a plan did not write."""


@dataclass(frozen=True)
class PlanLayout:
    """Where a plan's files go: manifests in their own directory, reports beside it."""

    root: Path

    @property
    def manifests(self) -> Path:
        return self.root / "manifests"

    @property
    def report(self) -> Path:
        return self.root / "plan.json"

    @property
    def mermaid(self) -> Path:
        return self.root / "access-matrix.mmd"

    @property
    def text(self) -> Path:
        return self.root / "plan.txt"


def placeholder_load_balancers(config: StackConfig, overrides: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """A documentation-range IP per stand-in, unless `--lb NAME=ADDRESS` gives one."""
    pool = itertools.chain(itertools.islice(DOCUMENTATION_NETWORKS[0].hosts(), PLACEHOLDER_FIRST_HOST - 1, None),
                           *(network.hosts() for network in DOCUMENTATION_NETWORKS[1:]))
    addresses = {}
    for database in config.databases:
        if database.is_stand_in:
            address = overrides.get(database.name) or str(next(pool, ""))
            if not address:
                stand_ins = sum(database.is_stand_in for database in config.databases)
                raise PlaceholdersExhausted(
                    f"{stand_ins} stand-ins need LoadBalancer addresses and the documentation ranges hold "
                    f"{PLACEHOLDER_CAPACITY} placeholders: give the others with --lb NAME=ADDRESS")
            addresses[database.name] = {"ip": address} if _is_ip(address) else {"hostname": address}
    return addresses


class PlaceholdersExhausted(Exception):
    """More stand-ins than placeholder addresses."""


def _is_ip(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def run_stack_file(stack_file: StackFile, mocks: RecordingMocks, *, stack: str) -> ProgramRun:
    """The program, run on the mock engine with a stack file's whole config as `pulumi up` gets it."""
    prefix = f"{PROJECT}:"
    values = {key[len(prefix):]: value for key, value in stack_file.config.items() if key.startswith(prefix)}
    others = {key: value for key, value in stack_file.config.items() if not key.startswith(prefix)}
    return run_program(values, mocks, stack=stack, other_config=others)


def prepare_directory(root: Path) -> None:
    """An empty directory to write into: created, or emptied when a previous plan wrote it."""
    if root.exists():
        if not root.is_dir():
            raise PlanDirectoryError(f"{root} is a file, not a directory; pick another --out")
        if any(root.iterdir()) and not (root / PLAN_MARKER).exists():
            raise PlanDirectoryError(f"{root} is not empty and was not written by make plan; it is left as it is. "
                                     "Pick an empty or new directory with PLAN_DIR=<dir> (or --out)")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / PLAN_MARKER).write_text("written by make plan; the next plan empties this directory\n")


def _file_for(manifest: Mapping[str, Any], *, patch: bool) -> str:
    kind = manifest["kind"]
    if patch:
        kind = f"{kind}:labels"
    elif kind == "AuthorizationPolicy" and "rules" not in manifest.get("spec", {}):
        kind = "AuthorizationPolicy:baseline"
    elif kind == "Gateway" and manifest["apiVersion"].startswith("networking.istio.io/"):
        # Istio's own Gateway shares its kind name with the Gateway API's; sidecar mode routes through it.
        kind = "Gateway.networking.istio.io"
    for file, kinds in APPLY_ORDER:
        if kind in kinds:
            return file
    raise ValueError(f"no apply-order file for kind {kind!r} ({manifest['apiVersion']}): add it to APPLY_ORDER")


def _identity(manifest: Mapping[str, Any]) -> tuple[str, str, str, str]:
    metadata = manifest.get("metadata", {})
    return manifest["kind"], manifest["apiVersion"], metadata.get("namespace", ""), metadata.get("name", "")


def dump_yaml(documents: Iterable[Any]) -> str:
    """YAML documents with sorted keys: the same objects always give the same text."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=True, default_flow_style=False)


def write_manifests(layout: PlanLayout, manifests: Sequence[Mapping[str, Any]],
                    patches: Sequence[Mapping[str, Any]] = ()) -> list[Path]:
    """Every object in its apply-order file, sorted by kind, namespace and name."""
    prepare_directory(layout.root)
    layout.manifests.mkdir()
    by_file: dict[str, list[Mapping[str, Any]]] = {file: [] for file, _ in APPLY_ORDER}
    for manifest in manifests:
        by_file[_file_for(manifest, patch=False)].append(manifest)
    for manifest in patches:
        by_file[_file_for(manifest, patch=True)].append(manifest)
    written = []
    for file, documents in by_file.items():
        if documents:
            path = layout.manifests / file
            path.write_text(dump_yaml(sorted(documents, key=_identity)))
            written.append(path)
    return written
