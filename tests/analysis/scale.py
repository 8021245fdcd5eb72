"""Manifest sets of any size in the shapes the program renders, and the analysis's time and peak
memory on them: the benchmark of "analysis linear in policies plus cells". Not a timed test: it
measures and prints.

A topology of D databases, N namespaces and G grants (one grant is one namespace's access to one
database) becomes what `program.applied()` holds for the equivalent stack config (checked by
`test_analysis_scale.py`): the egress namespace, its waypoint, access logs and ServiceEntry admission
policy; per database a ServiceEntry and its allow-nothing policy (every fourth database is named by
DNS, the others by an IP the ServiceEntry pins); per grant one ALLOW policy; per namespace, which
the stack does not own, its ambient label patch and its egress lockdown.

    python tests/analysis/scale.py 100,100,1000 1000,1000,10000

Each size is written as YAML to a temporary directory, then analysed in a fresh interpreter (load,
index, access matrix, findings) so that its peak RSS is the analysis's own.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

EGRESS = "istio-egress"
WAYPOINT = "waypoint"
PORT = 5432
SEED = 20240605
# RFC 2544 benchmarking addresses: room for every database of the largest topology.
FIRST_ADDRESS = ipaddress.IPv4Address("198.18.0.10")
PART_OF = {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "ambient-egress"}
ADMISSION = f"ambient-egress.{EGRESS}.serviceentry-namespaces"
Manifest = dict[str, Any]


def database_name(index: int) -> str:
    return f"db-{index}"


def namespace_name(index: int) -> str:
    return f"team-{index}"


def database_address(index: int) -> str:
    """An IP, or for every fourth database a DNS name."""
    return f"{database_name(index)}.databases.example.com" if index % 4 == 3 else str(FIRST_ADDRESS + index)


def grants(databases: int, namespaces: int, count: int, *, seed: int = SEED) -> dict[str, list[str]]:
    """`count` distinct (namespace, database) pairs, every namespace granted at least one database:
    each namespace's databases, by namespace, in the order the config would list them."""
    if not namespaces <= count <= databases * namespaces:
        raise ValueError(f"G must lie between N and D×N (D={databases}, N={namespaces}, G={count})")
    first = {(n, n % databases) for n in range(namespaces)}
    rest = [pair for pair in range(databases * namespaces) if (pair // databases, pair % databases) not in first]
    chosen = first | {divmod(pair, databases) for pair in random.Random(seed).sample(rest, count - namespaces)}
    by_namespace: dict[str, list[str]] = {}
    for namespace, database in sorted(chosen):
        by_namespace.setdefault(namespace_name(namespace), []).append(database_name(database))
    return by_namespace


def stack_config(databases: int, namespaces: int, count: int, *, seed: int = SEED) -> dict[str, Any]:
    """The stack config whose program renders `manifests(...)` of the same arguments."""
    return {
        "egressNamespace": EGRESS,
        "databases": [{"name": database_name(i), "address": database_address(i), "port": PORT} for i in range(databases)],
        "grants": [{"namespace": ns, "databases": dbs} for ns, dbs in grants(databases, namespaces, count, seed=seed).items()],
    }


def _metadata(name: str, namespace: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {**PART_OF, **(labels or {})}}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def _egress_machinery() -> list[Manifest]:
    listener = {"name": "mesh", "port": 15008, "protocol": "HBONE", "allowedRoutes": {"namespaces": {"from": "Same"}}}
    waiting = {
        "pulumi.com/timeoutSeconds": "300",
        "pulumi.com/waitFor": '["condition=Programmed", "jsonpath={.status.addresses[0].value}"]',
    }
    message = (
        "'ServiceEntry ' + request.name + ' may not be created in namespace ' + request.namespace + ': "
        f"ServiceEntries belong in {EGRESS}, where the egress waypoint enforces them'"
    )
    rules = {
        "apiGroups": ["networking.istio.io"], "apiVersions": ["*"],
        "operations": ["CREATE", "UPDATE"], "resources": ["serviceentries"],
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": _metadata(EGRESS, labels={"istio.io/dataplane-mode": "ambient"})},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {**_metadata(WAYPOINT, EGRESS), "annotations": waiting},
         "spec": {"gatewayClassName": "istio-waypoint", "listeners": [listener]}},
        {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
         "metadata": _metadata(f"{WAYPOINT}-access-logs", EGRESS),
         "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": WAYPOINT}],
                  "accessLogging": [{"providers": [{"name": "envoy"}]}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": _metadata(ADMISSION),
         "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [rules]},
                  "validations": [{"expression": f"request.namespace in ['{EGRESS}']",
                                   "messageExpression": message, "reason": "Forbidden"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": _metadata(ADMISSION), "spec": {"policyName": ADMISSION, "validationActions": ["Deny"]}},
    ]


def _authorization_policy(name: str, target: str, rules: list[dict[str, Any]] | None) -> Manifest:
    spec: dict[str, Any] = {
        "targetRefs": [{"group": "networking.istio.io", "kind": "ServiceEntry", "name": target}],
        "action": "ALLOW",
    }
    if rules is not None:
        spec["rules"] = rules
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": _metadata(name, EGRESS), "spec": spec}


def _database(index: int) -> list[Manifest]:
    name, address = database_name(index), database_address(index)
    pinned = not address.endswith(".example.com")
    spec: dict[str, Any] = {
        "hosts": [f"{address}.nip.io" if pinned else address],
        "location": "MESH_EXTERNAL",
        "resolution": "NONE" if pinned else "DNS",
        "ports": [{"number": PORT, "name": "tcp-postgres", "protocol": "TCP"}],
    }
    if pinned:
        spec["addresses"] = [address]
    service_entry = {
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": _metadata(name, EGRESS, {"istio.io/use-waypoint": WAYPOINT}), "spec": spec,
    }
    return [_authorization_policy(f"{name}-allow-nothing", name, None), service_entry]


def _grant(namespace: str, database: str) -> Manifest:
    rule = {"from": [{"source": {"namespaces": [namespace]}}], "to": [{"operation": {"ports": [str(PORT)]}}]}
    return _authorization_policy(f"allow-{database}-from-{namespace}", database, [rule])


def _client_namespace(namespace: str) -> list[Manifest]:
    label_patch = {"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": namespace, "labels": {"istio.io/dataplane-mode": "ambient"}}}
    lockdown = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": _metadata("egress-lockdown", namespace),
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": {}}]}]},
    }
    return [label_patch, lockdown]


def manifests(databases: int, namespaces: int, count: int, *, seed: int = SEED) -> list[Manifest]:
    """What the program applies for `stack_config(databases, namespaces, count)`."""
    granted = grants(databases, namespaces, count, seed=seed)
    return [
        *_egress_machinery(),
        *(manifest for index in range(databases) for manifest in _database(index)),
        *(_grant(namespace, database) for namespace, names in granted.items() for database in names),
        *(manifest for namespace in granted for manifest in _client_namespace(namespace)),
    ]


def write(directory: Path, documents: Iterable[Manifest]) -> None:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    with (directory / "manifests.yaml").open("w", encoding="utf-8") as stream:
        yaml.dump_all(documents, stream, Dumper=dumper, sort_keys=False)


def measure(directory: Path) -> dict[str, float]:
    """Seconds for each stage of the analysis of `directory`, and this process's peak RSS in MiB."""
    from analysis import MeshIndex, access_matrix, analyze, load_manifests

    stages: dict[str, float] = {}
    started = time.perf_counter()
    loaded = load_manifests(directory)
    stages["load"] = time.perf_counter() - started
    index = MeshIndex(loaded)
    stages["index"] = time.perf_counter() - started - sum(stages.values())
    matrix = access_matrix(index)
    stages["matrix"] = time.perf_counter() - started - sum(stages.values())
    found = analyze(index)
    stages["findings"] = time.perf_counter() - started - sum(stages.values())
    stages["total"] = time.perf_counter() - started
    stages["cells"] = len(matrix.clients) * len(matrix.destinations)
    stages["findings_count"] = len(found)
    stages["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return stages


def _size(text: str) -> tuple[int, int, int]:
    databases, namespaces, count = (int(part) for part in text.split(","))
    return databases, namespaces, count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=_size, default=[(100, 100, 1000)], metavar="D,N,G")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one directory, in this process
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    repository = Path(__file__).resolve().parents[2]
    print("D,N,G  documents  load s  index s  matrix s  findings s  total s  cells  peak RSS MiB")
    for databases, namespaces, count in args.sizes:
        with tempfile.TemporaryDirectory() as directory:
            documents = manifests(databases, namespaces, count)
            write(Path(directory), documents)
            command = [sys.executable, __file__, "--measure", directory]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True, cwd=repository).stdout)
        print(
            f"{databases},{namespaces},{count}  {len(documents)}  {result['load']:.2f}  {result['index']:.2f}  "
            f"{result['matrix']:.2f}  {result['findings']:.2f}  {result['total']:.2f}  {int(result['cells'])}  "
            f"{result['peak_rss_mib']:.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main())
