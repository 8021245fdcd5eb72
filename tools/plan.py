"""`make plan`: what `pulumi up` would apply, who could then reach what, and what looks wrong.

Runs the real program on Pulumi's in-process mock engine with a stack's config (no cluster, no
Pulumi CLI), writes every manifest as YAML in `kubectl apply -f` order, then hands the directory to
the analysis layer, which reads only those files. Exits non-zero on an error finding, or when the
computed access matrix differs from the grants the stack config declares.
"""

from __future__ import annotations

import argparse
import ipaddress
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from analysis import (
    AccessMatrix,
    MeshIndex,
    ObjectRef,
    Request,
    access_matrix,
    align_columns,
    analyze,
    evaluate,
    load_manifests,
    render_findings,
    render_mermaid,
    render_table,
)
from components.names import address_problem
from components.values import is_ipv4
from stack import PROJECT, ConfigError, StackConfig, StackFile, read_stack_file
from stack.access import LIMITED, request_verdict
from stack.access import access_matrix as declared_matrix
from tools.mock_engine import ROOT, ProgramRun, RecordingMocks, run_program

# Stand-in LoadBalancer addresses come from TEST-NET-3 (RFC 5737): documentation-only, never routed.
PLACEHOLDER_NETWORK = ipaddress.IPv4Network("203.0.113.0/24")
PLACEHOLDER_FIRST_HOST = 10

# `kubectl apply -f DIR` applies files in name order: namespaces first, and each database's
# allow-nothing baseline before its ServiceEntry, so nothing is open in between.
APPLY_ORDER = (
    ("00-namespaces.yaml", ("Namespace",)),
    ("05-namespace-labels.yaml", ("Namespace:labels",)),
    ("10-identities-and-secrets.yaml", ("ServiceAccount", "Secret")),
    ("15-admission.yaml", ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")),
    ("20-egress-gateway.yaml", ("Gateway", "Telemetry")),
    ("30-baseline-policies.yaml", ("AuthorizationPolicy:baseline",)),
    ("40-service-entries.yaml", ("ServiceEntry",)),
    ("50-grant-policies.yaml", ("AuthorizationPolicy",)),
    ("55-traffic-rules.yaml", ("DestinationRule", "HTTPRoute")),
    ("60-network-policies.yaml", ("NetworkPolicy",)),
    ("70-workloads.yaml", ("Deployment", "Service", "Pod")),
)


# Written into every plan directory, so a later plan empties only a directory a plan wrote.
PLAN_MARKER = ".ambient-egress-plan"


def placeholder_load_balancers(config: StackConfig, overrides: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """A documentation-range IP per stand-in, unless `--lb NAME=ADDRESS` gives one."""
    stand_ins = [database.name for database in config.databases if database.is_stand_in]
    hosts = PLACEHOLDER_NETWORK.hosts()
    for _ in range(PLACEHOLDER_FIRST_HOST - 1):
        next(hosts)
    addresses = {}
    for name in stand_ins:
        address = overrides.get(name) or str(next(hosts))
        addresses[name] = {"ip": address} if is_ipv4(address) else {"hostname": address}
    return addresses


def _file_for(manifest: Mapping[str, Any], *, patch: bool) -> str:
    kind = manifest["kind"]
    if patch:
        kind = f"{kind}:labels"
    elif kind == "AuthorizationPolicy" and "rules" not in manifest.get("spec", {}):
        kind = "AuthorizationPolicy:baseline"
    return next(file for file, kinds in APPLY_ORDER if kind in kinds)


class PlanDirectoryError(Exception):
    """The output directory holds something a plan did not write."""


def prepare_directory(directory: Path) -> None:
    """An empty directory to write into: created, or emptied when a previous plan wrote it."""
    if directory.exists():
        if not directory.is_dir():
            raise PlanDirectoryError(f"{directory} is a file, not a directory; pick another --out")
        if any(directory.iterdir()) and not (directory / PLAN_MARKER).exists():
            raise PlanDirectoryError(f"{directory} is not empty and was not written by make plan; it is left as it is. "
                                     "Pick an empty or new directory with PLAN_DIR=<dir> (or --out)")
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / PLAN_MARKER).write_text("written by make plan; the next plan empties this directory\n")


def write_manifests(manifests: Sequence[Mapping[str, Any]], directory: Path,
                    patches: Sequence[Mapping[str, Any]] = ()) -> list[Path]:
    prepare_directory(directory)
    by_file: dict[str, list[Mapping[str, Any]]] = {file: [] for file, _ in APPLY_ORDER}
    for manifest in manifests:
        by_file[_file_for(manifest, patch=False)].append(manifest)
    for manifest in patches:
        by_file[_file_for(manifest, patch=True)].append(manifest)
    written = []
    for file, documents in by_file.items():
        if documents:
            path = directory / file
            path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
            written.append(path)
    return written


def declared_mismatches(matrix: AccessMatrix, config: StackConfig) -> list[str]:
    """Cells where the manifests' verdict differs from what the grants declare.

    LIMITED cells depend on the request, so the sample requests check them instead.
    """
    mismatches = []
    for namespace, row in declared_matrix(config).items():
        for database, declared in row.items():
            if declared == LIMITED:
                continue
            destination = f"{config.egress_namespace}/{database}"
            cell = matrix.cells.get((namespace, destination))
            computed = cell.decision.value if cell else "MISSING"
            if computed != declared:
                reason = f" ({cell.reason})" if cell else ""
                mismatches.append(f"{namespace} -> {database}: declared {declared}, manifests give {computed}{reason}")
    return mismatches


@dataclass(frozen=True)
class SampleCheck:
    client: str
    service: str
    method: str
    path: str
    declared: str
    computed: str
    reason: str

    @property
    def matches(self) -> bool:
        return self.declared == self.computed


def sample_checks(index: MeshIndex, config: StackConfig) -> list[SampleCheck]:
    """Every declared client against every sample request of every HTTP service."""
    checks = []
    clients = list(declared_matrix(config))
    for service in config.services:
        port = service.http_ports[0].number if service.http_ports else None
        for client in clients:
            namespace, _, account = client.partition("/sa/")
            for sample in service.sample_requests:
                request = Request(namespace, ObjectRef(config.egress_namespace, service.name), port,
                                  service_account=account or "default", trust_domain=config.trust_domain,
                                  method=sample.method, path=sample.path)
                verdict = evaluate(index, request)
                checks.append(SampleCheck(client, service.name, sample.method, sample.path,
                                          request_verdict(config, client, service.name, sample.method, sample.path),
                                          verdict.decision.value, verdict.reason))
    return checks


def render_sample_checks(checks: Sequence[SampleCheck]) -> str:
    rows = [("client", "request", "declared", "manifests")] + [
        (check.client, f"{check.method} {check.service}{check.path}", check.declared,
         check.computed if check.matches else f"{check.computed}  <-- differs: {check.reason}")
        for check in checks
    ]
    return "\n".join(align_columns(rows))


def _parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, separator, address = pair.partition("=")
        if not separator or not name or not address:
            raise SystemExit(f"--lb takes NAME=ADDRESS, e.g. --lb postgres-1=198.51.100.7 (got {pair!r})")
        problem = address_problem(address)
        if problem:
            raise SystemExit(f"--lb {name}: the address {problem}")
        overrides[name] = address
    return overrides


def run_stack_file(stack_file: StackFile, mocks: RecordingMocks, *, stack: str) -> ProgramRun:
    """The program, run on the mock engine with a stack file's whole config as `pulumi up` gets it."""
    prefix = f"{PROJECT}:"
    values = {key[len(prefix):]: value for key, value in stack_file.config.items() if key.startswith(prefix)}
    others = {key: value for key, value in stack_file.config.items() if not key.startswith(prefix)}
    return run_program(values, mocks, stack=stack, other_config=others)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev", help="reads Pulumi.<stack>.yaml (default: dev)")
    parser.add_argument("--config", type=Path, help="a stack config file to read instead of Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, help="manifest directory (default: build/plan/<stack>)")
    parser.add_argument("--lb", action="append", default=[], metavar="NAME=ADDRESS",
                        help="a stand-in's LoadBalancer address instead of the placeholder; repeatable")
    parser.add_argument("--format", choices=("text", "json", "mermaid"), default="text",
                        help="how to print the access matrix (all three are written to the out directory)")
    args = parser.parse_args(argv)

    stack_path = args.config or ROOT / f"Pulumi.{args.stack}.yaml"
    if not stack_path.exists():
        print(f"no stack config {stack_path.name}: create it, or pick another with STACK=<name>", file=sys.stderr)
        return 2
    try:
        stack_file = read_stack_file(stack_path)
        config = stack_file.stack_config()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    overrides = _parse_overrides(args.lb)
    unknown = sorted(set(overrides) - {database.name for database in config.databases if database.is_stand_in})
    if unknown:
        print(f"--lb names no stand-in database: {', '.join(unknown)}", file=sys.stderr)
        return 2

    load_balancers = placeholder_load_balancers(config, overrides)
    run = run_stack_file(stack_file, RecordingMocks(load_balancers), stack=args.stack)
    manifests, patches = run.manifests(), run.patches()
    out = args.out or ROOT / "build" / "plan" / args.stack
    try:
        files = write_manifests(manifests, out, patches)
    except PlanDirectoryError as error:
        print(error, file=sys.stderr)
        return 2

    index = MeshIndex(load_manifests(out))
    findings = analyze(index)
    matrix = access_matrix(index)
    mismatches = declared_mismatches(matrix, config)
    samples = sample_checks(index, config)
    mismatches += [f"{c.client} {c.method} {c.service}{c.path}: declared {c.declared}, manifests give {c.computed} ({c.reason})"
                   for c in samples if not c.matches]
    # Beside the manifests but not YAML, so `kubectl apply -f` and the analysis skip them.
    (out / "access-matrix.json").write_text(matrix.to_json() + "\n")
    (out / "access-matrix.mmd").write_text(render_mermaid(matrix) + "\n")
    (out / "findings.txt").write_text(render_findings(findings) + "\n")

    placeholders = {name: lb.get("ip") or lb["hostname"] for name, lb in load_balancers.items() if name not in overrides}
    print(f"{stack_path.name}: {len(manifests)} objects and {len(patches)} label patches in {len(files)} files under {out}")
    if placeholders:
        listed = ", ".join(f"{name}={address}" for name, address in placeholders.items())
        print(f"PLACEHOLDER LoadBalancer addresses (TEST-NET-3, not real; override with --lb NAME=ADDRESS): {listed}")
    print()
    if args.format == "json":
        print(matrix.to_json())
    elif args.format == "mermaid":
        print(render_mermaid(matrix))
    else:
        print(render_table(matrix))
    if samples:
        print("\nHTTP sample requests:")
        print(render_sample_checks(samples))
    unchecked = sorted({target for row in declared_matrix(config).values() for target, cell in row.items() if cell == LIMITED}
                       - {service.name for service in config.services if service.sample_requests})
    if unchecked:
        print(f"\nNote: method- or path-limited grants of {', '.join(unchecked)} are not checked: declare sampleRequests")
    print()
    print(render_findings(findings) or "No findings.")
    if mismatches:
        print("\nThe manifests do not give the declared access:")
        print("\n".join(f"  {line}" for line in mismatches))
    errors = [finding for finding in findings if finding.severity == "Error"]
    return 1 if errors or mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
