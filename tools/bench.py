"""Planning benchmark: time, memory and output size of the program from 10 to 10,000 grants.

Not a timed test: it measures and writes what it measured.

For each topology size (D databases, N namespaces, G grants, generated from a seed) it runs the
real `__main__.py` on Pulumi's in-process mock engine (`tools.mock_engine`) in a fresh subprocess
and records wall and CPU time, time spent in Python's garbage collector, peak memory (ru_maxrss
of that subprocess), the registered-resource count and the bytes of every Kubernetes manifest.
Then, for the same registrations, it runs the baseline of `tools.bench_baseline` (same count, same
types, same input dicts, no logic) in another fresh subprocess: the ratio of the two is the
program's own overhead over the SDK's floor.

Sizes whose predicted time exceeds `--budget` are not run: their times are extrapolated from the
measured ones (a power law fitted on the largest measured sizes) and their rows say
`extrapolated`; their resource counts come from the formula, which a test checks.

It also compares two AuthorizationPolicy layouts, one per grant (what the program renders) and
one per database listing all its namespaces: object count, manifest bytes, an estimate of the
Envoy RBAC config the waypoint receives, and what a one-grant change rewrites.

Outputs, in `docs/` by default: bench.csv, bench.png, policy-layout.csv, bench-tables.md.

    python -m tools.bench --quick         # three small sizes and the layout table, about a minute
    python -m tools.bench --full          # up to D=1,000, N=1,000, G=10,000 (long; see --budget)
    python -m tools.bench --sizes 10,10,50 100,100,1000
    python -m tools.bench --profile 50,50,500   # pyinstrument profile of one run (needs pyinstrument)
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import math
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

QUICK_SIZES = ((10, 10, 50), (25, 25, 250), (50, 50, 500))
FULL_SIZES = ((10, 10, 100), (30, 30, 300), (100, 100, 1000), (300, 300, 3000), (1000, 1000, 10000))
LAYOUT_SIZES = ((10, 10, 50), (100, 100, 1000), (1000, 1000, 10000), (10, 1000, 10000))
TARGET_SIZE = (1000, 1000, 10000)
TARGET_SECONDS = 60.0
TARGET_RATIO = 1.3
DEFAULT_SEED = 20240605
# RFC 2544 benchmarking addresses for the stand-ins' mocked LoadBalancers; TEST-NET ranges for
# the existing databases: nothing here is ever dialled.
_LOAD_BALANCER_NET = "198.18"
_EXTERNAL_NETS = ("192.0.2", "198.51.100", "203.0.113")


# --- Topologies -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Topology:
    """D databases (the first `externals` of them existing databases with an address, the rest
    stand-ins), N namespaces and G (namespace, database) grants."""

    databases: int
    namespaces: int
    grants: int
    externals: int = 0
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if min(self.databases, self.namespaces, self.grants) < 1:
            raise ValueError("D, N and G must each be at least 1")
        if self.grants > self.databases * self.namespaces:
            raise ValueError(f"G={self.grants} exceeds D*N={self.databases * self.namespaces}: a grant is a distinct pair")
        if not 0 <= self.externals <= self.databases:
            raise ValueError("externals must be within 0..D")

    @property
    def label(self) -> str:
        extra = f" E={self.externals}" if self.externals else ""
        return f"D={self.databases} N={self.namespaces} G={self.grants}{extra}"

    @property
    def stand_ins(self) -> int:
        return self.databases - self.externals

    @property
    def granted_namespaces(self) -> int:
        """Namespaces holding at least one grant: all N when G >= N."""
        return min(self.namespaces, self.grants)

    def database_names(self) -> list[str]:
        return [f"db-{index:04d}" for index in range(self.databases)]

    def namespace_names(self) -> list[str]:
        return [f"team-{index:04d}" for index in range(self.namespaces)]

    def grant_lists(self) -> dict[str, list[str]]:
        """Each namespace's databases: every namespace gets at least one grant when G >= N, the
        rest are spread at random, and databases are handed out round a shuffled cycle so each
        gets about G/D namespaces."""
        rng = random.Random(self.seed)
        namespaces = self.namespace_names()[: self.granted_namespaces]
        counts = [1] * len(namespaces)
        for _ in range(self.grants - len(namespaces)):
            while True:
                slot = rng.randrange(len(namespaces))
                if counts[slot] < self.databases:
                    counts[slot] += 1
                    break
        cycle = self.database_names()
        rng.shuffle(cycle)
        cursor = 0
        lists: dict[str, list[str]] = {}
        for namespace, count in zip(namespaces, counts):
            lists[namespace] = [cycle[(cursor + offset) % len(cycle)] for offset in range(count)]
            cursor = (cursor + count) % len(cycle)
        return lists

    def external_address(self, index: int) -> str:
        # IPv4 documentation addresses while they last, then DNS names.
        if index < 254 * len(_EXTERNAL_NETS):
            return f"{_EXTERNAL_NETS[index // 254]}.{index % 254 + 1}"
        return f"db-{index:04d}.example.com"

    def config(self) -> dict[str, Any]:
        """Stack config values, keyed without the project prefix, as a stack file holds them."""
        databases: list[dict[str, Any]] = []
        for index, name in enumerate(self.database_names()):
            entry: dict[str, Any] = {"name": name}
            if index < self.externals:
                entry["address"] = self.external_address(index)
            databases.append(entry)
        grants = [{"namespace": namespace, "databases": names} for namespace, names in self.grant_lists().items()]
        return {"databases": databases, "grants": grants}

    def load_balancers(self) -> dict[str, dict[str, str]]:
        """The ingress a cloud would report for each stand-in's LoadBalancer Service."""
        return {
            name: {"ip": f"{_LOAD_BALANCER_NET}.{index // 250}.{index % 250 + 1}"}
            for index, name in enumerate(self.database_names()) if index >= self.externals
        }


def parse_size(text: str) -> Topology:
    parts = [int(part) for part in text.replace("x", ",").split(",")]
    if len(parts) not in (3, 4):
        raise argparse.ArgumentTypeError(f"a size is D,N,G or D,N,G,E (got {text!r})")
    try:
        return Topology(*parts)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


# --- The resource-count formula --------------------------------------------------------------

def resource_formula(
    *,
    stand_ins: int,
    externals: int,
    namespaces: int,
    grants: int,
    service_accounts: int = 0,
    test_clients: bool = False,
    database_ingress_policy: bool = True,
    client_egress_policy: bool = False,
    ipv4_external: bool = False,
) -> int:
    """Registered resources for a stack of databases only (no `services`):

        R = 5 + [S>0] + 4·D + (4 + i)·S + (2 + t + e)·N + A + G

    D = S + E databases (S stand-ins, E existing), N granted namespaces, G grants (namespace,
    database pairs), A service accounts over all grants, i = bypassProtection.databaseIngressPolicy,
    t = testClients, e = bypassProtection.clientEgressPolicy and at least one database has an IPv4
    address. See tests/test_resource_formula.py for where each term comes from.
    """
    databases = stand_ins + externals
    egress_policy = client_egress_policy and ipv4_external
    return (
        5 + (1 if stand_ins else 0)
        + 4 * databases
        + (4 + int(database_ingress_policy)) * stand_ins
        + (2 + int(test_clients) + int(egress_policy)) * namespaces
        + service_accounts
        + grants
    )


def topology_resources(topology: Topology) -> int:
    """The formula for a generated topology (default flags, no service accounts)."""
    return resource_formula(
        stand_ins=topology.stand_ins, externals=topology.externals,
        namespaces=topology.granted_namespaces, grants=topology.grants,
    )


# --- Measuring, inside a worker subprocess ---------------------------------------------------

class _GcClock:
    """Seconds spent in the cyclic garbage collector, from gc.callbacks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = Counter()
        self._started = 0.0

    def __call__(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1

    def __enter__(self) -> _GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        gc.callbacks.remove(self)


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _use_source(source: Path) -> Path:
    """Make `source` (a checkout of this project) the one imported; returns its __main__.py."""
    source = source.resolve()
    sys.path.insert(0, str(source))
    return source / "__main__.py"


def _timed(run: Any) -> tuple[Any, dict[str, float]]:
    with _GcClock() as clock:
        cpu, wall = time.process_time(), time.perf_counter()
        result = run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return result, {"wall_s": wall, "cpu_s": cpu, "gc_s": clock.seconds}


def worker_program(topology: Topology, source: Path, registrations_out: Path | None) -> dict[str, Any]:
    started = time.perf_counter()
    program = _use_source(source)
    from tools.mock_engine import RecordingMocks, run_program

    # Warm up: imports and the SDK's lazily loaded modules are paid once, outside the timing.
    tiny = Topology(1, 1, 1, seed=topology.seed)
    run_program(tiny.config(), RecordingMocks(tiny.load_balancers()), program=program)
    startup = time.perf_counter() - started
    rss_before = _peak_rss_mb()

    run, timing = _timed(lambda: run_program(topology.config(), RecordingMocks(topology.load_balancers()), program=program))
    manifests = run.manifests()
    result: dict[str, Any] = {
        **timing,
        "startup_s": startup,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_mb": rss_before,
        "resources": len(run.resources),
        "types": dict(Counter(registered.type for registered in run.resources)),
        "manifest_bytes": sum(len(json.dumps(manifest)) for manifest in manifests),
        "layout": layout_metrics(manifests),
    }
    if registrations_out is not None:
        from tools.bench_baseline import write_registrations
        write_registrations(registrations_out, (
            (registered.type, registered.name, None if _is_component(registered.type) else registered.manifest())
            for registered in run.resources
        ))
    return result


def worker_baseline(registrations_in: Path, source: Path) -> dict[str, Any]:
    started = time.perf_counter()
    _use_source(source)
    from tools.bench_baseline import baseline_program, read_registrations
    from tools.mock_engine import run_on_mocks

    registrations = list(read_registrations(registrations_in))
    run_on_mocks(baseline_program(registrations[:3]))
    startup = time.perf_counter() - started
    rss_before = _peak_rss_mb()
    run, timing = _timed(lambda: run_on_mocks(baseline_program(registrations)))
    return {**timing, "startup_s": startup, "peak_rss_mb": _peak_rss_mb(), "rss_before_mb": rss_before,
            "resources": len(run.resources)}


def _is_component(type_token: str) -> bool:
    # Custom resources come from providers (`kubernetes:`, `random:`); the project's own
    # components carry the project's package name.
    return type_token.split(":", 1)[0] not in ("kubernetes", "random")


# --- Policy layouts ---------------------------------------------------------------------------

def _is_policy(manifest: Mapping[str, Any]) -> bool:
    return manifest.get("kind") == "AuthorizationPolicy"


def _is_grant_policy(manifest: Mapping[str, Any]) -> bool:
    return _is_policy(manifest) and bool(manifest.get("spec", {}).get("rules"))


def _target(policy: Mapping[str, Any]) -> tuple[str, str]:
    return policy["metadata"]["namespace"], policy["spec"]["targetRefs"][0]["name"]


def per_database_layout(policies: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The same access as one ALLOW policy per target: its grants' rules with the same `to` merge
    their sources into one namespaces list and one principals list, which Istio ORs exactly as
    separate rules. A target nobody is granted keeps its allow-nothing policy (an ALLOW without
    rules), so the per-database policy is also the baseline that keeps the target closed."""
    by_target: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    closed: dict[tuple[str, str], Mapping[str, Any]] = {}
    for policy in policies:
        if _is_grant_policy(policy):
            by_target.setdefault(_target(policy), []).append(policy)
        else:
            closed[_target(policy)] = policy
    merged: list[dict[str, Any]] = [dict(policy) for key, policy in closed.items() if key not in by_target]
    for (_, target), policies in by_target.items():
        by_operation: dict[str, dict[str, set[str]]] = {}
        for policy in policies:
            for rule in policy["spec"]["rules"]:
                key = json.dumps(rule.get("to", []), sort_keys=True)
                sources = by_operation.setdefault(key, {"namespaces": set(), "principals": set()})
                for source in rule.get("from", []):
                    for kind in ("namespaces", "principals"):
                        sources[kind].update(source["source"].get(kind, ()))
        rules = []
        for key, sources in by_operation.items():
            from_ = [{"source": {kind: sorted(values)}} for kind, values in sources.items() if values]
            rules.append({"from": from_, "to": json.loads(key)})
        template = policies[0]
        merged.append({
            "apiVersion": template["apiVersion"],
            "kind": "AuthorizationPolicy",
            "metadata": {**template["metadata"], "name": f"allow-{target}"},
            "spec": {"targetRefs": template["spec"]["targetRefs"], "action": "ALLOW", "rules": rules},
        })
    return merged


def _peer_principal(match: Mapping[str, Any]) -> dict[str, Any]:
    return {"filterState": {"key": "io.istio.peer_principal", "stringMatch": match}}


def envoy_rbac_policies(policy: Mapping[str, Any]) -> dict[str, Any]:
    """A model of the Envoy RBAC policies istiod renders for one ALLOW AuthorizationPolicy on a
    waypoint: one named policy per rule, its `to` as permissions (ports, methods, paths) and its
    `from` as principals (a namespace becomes a regex on the peer's SPIFFE identity, a principal an
    exact match). An estimate of the shape and size, not istiod's exact output."""
    metadata = policy["metadata"]
    rendered = {}
    for index, rule in enumerate(policy["spec"].get("rules", [])):
        permissions = []
        for to in rule.get("to", []) or [{}]:
            operation = to.get("operation", {})
            clauses = []
            if operation.get("ports"):
                clauses.append({"orRules": {"rules": [{"destinationPort": int(port)} for port in operation["ports"]]}})
            if operation.get("methods"):
                clauses.append({"orRules": {"rules": [
                    {"header": {"name": ":method", "stringMatch": {"exact": method}}} for method in operation["methods"]]}})
            if operation.get("paths"):
                clauses.append({"orRules": {"rules": [
                    {"urlPath": {"path": {"exact": path}}} for path in operation["paths"]]}})
            permissions.append({"andRules": {"rules": clauses or [{"any": True}]}})
        principals = []
        for source in rule.get("from", []) or [{}]:
            spec = source.get("source", {})
            ids = [_peer_principal({"safeRegex": {"regex": f".+/ns/{re.escape(namespace)}/.+"}})
                   for namespace in spec.get("namespaces", [])]
            ids += [_peer_principal({"exact": f"spiffe://{principal}"}) for principal in spec.get("principals", [])]
            principals.append({"andIds": {"ids": [{"orIds": {"ids": ids}}]}} if ids else {"any": True})
        rendered[f"ns[{metadata['namespace']}]-policy[{metadata['name']}]-rule[{index}]"] = {
            "permissions": permissions, "principals": principals,
        }
    return rendered


def envoy_rbac_bytes(policies: Iterable[Mapping[str, Any]]) -> int:
    """Bytes (compact JSON) of the RBAC network filters the waypoint gets: one filter per target
    ServiceEntry, holding the rendered policies of every ALLOW policy that targets it."""
    filters: dict[tuple[str, str], dict[str, Any]] = {}
    for policy in policies:
        filters.setdefault(_target(policy), {}).update(envoy_rbac_policies(policy))
    total = 0
    for rendered in filters.values():
        rbac_filter = {
            "name": "envoy.filters.network.rbac",
            "typedConfig": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC",
                "statPrefix": "tcp.",
                "rules": {"action": "ALLOW", "policies": rendered},
            },
        }
        total += len(json.dumps(rbac_filter, separators=(",", ":")))
    return total


def layout_metrics(manifests: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-grant (as rendered: an allow-nothing policy per target and one policy per grant)
    against per-database (one policy per target) for the same access.

    A one-grant change creates or deletes one grant policy in the per-grant layout, and rewrites
    its target's whole policy in the per-database one: the `change_bytes` are those objects'
    sizes, mean and max over the granted targets' policies."""
    per_grant = [policy for policy in manifests if _is_policy(policy)]
    per_database = per_database_layout(per_grant)
    grant_sizes = [len(json.dumps(policy)) for policy in per_grant if _is_grant_policy(policy)]
    database_sizes = [len(json.dumps(policy)) for policy in per_database if _is_grant_policy(policy)]

    def summary(policies: list[Mapping[str, Any]], changed: list[int]) -> dict[str, Any]:
        return {
            "policies": len(policies),
            "manifest_bytes": sum(len(json.dumps(policy)) for policy in policies),
            "rbac_bytes": envoy_rbac_bytes(policies),
            "change_objects": 1,
            "change_bytes_mean": sum(changed) / max(len(changed), 1),
            "change_bytes_max": max(changed, default=0),
        }

    return {"per_grant": summary(per_grant, grant_sizes), "per_database": summary(per_database, database_sizes)}


def _policy_template(source: Path) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """The allow-nothing and the grant policy as the program renders them, from a one-grant run."""
    program = _use_source(source)
    from tools.mock_engine import RecordingMocks, run_program

    tiny = Topology(1, 1, 1)
    run = run_program(tiny.config(), RecordingMocks(tiny.load_balancers()), program=program)
    policies = [manifest for manifest in run.manifests() if _is_policy(manifest)]
    grants = [policy for policy in policies if _is_grant_policy(policy)]
    closed = [policy for policy in policies if not _is_grant_policy(policy)]
    if len(grants) != 1 or len(closed) != 1:
        raise RuntimeError(f"expected one allow-nothing and one grant policy from a one-grant run, got {len(policies)}")
    return closed[0], grants[0], tiny.database_names()[0], tiny.namespace_names()[0]


def synthesized_policies(topology: Topology, template: tuple[dict[str, Any], dict[str, Any], str, str]) -> list[dict[str, Any]]:
    """Every AuthorizationPolicy of `topology`, made from the one-grant run's by renaming database
    and namespace: the text the program renders, without running it (checked against a mock run)."""
    closed, grant, database, namespace = template
    closed_text, grant_text = json.dumps(closed), json.dumps(grant)
    if database not in closed_text or database not in grant_text or namespace not in grant_text:
        raise RuntimeError("the policy templates no longer name their database and namespace")
    closed_text = closed_text.replace(database, "\x00DB\x00")
    grant_text = grant_text.replace(database, "\x00DB\x00").replace(namespace, "\x00NS\x00")
    policies = [json.loads(closed_text.replace("\x00DB\x00", name)) for name in topology.database_names()]
    policies += [
        json.loads(grant_text.replace("\x00DB\x00", name).replace("\x00NS\x00", grantee))
        for grantee, names in topology.grant_lists().items() for name in names
    ]
    return policies


# --- Orchestration ----------------------------------------------------------------------------

@dataclass
class Row:
    topology: Topology
    program: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    extrapolated: dict[str, Any] = field(default_factory=dict)
    load_average: float = 0.0
    note: str = ""

    @property
    def measured(self) -> bool:
        return self.program is not None


def _worker(args: list[str], timeout: float) -> dict[str, Any] | None:
    command = [sys.executable, "-m", "tools.bench", "--worker", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    try:
        completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  timed out after {timeout:.0f} s", flush=True)
        return None
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-4000:])
        raise RuntimeError(f"benchmark worker failed: {' '.join(args)}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _power_fit(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """Least squares for log y = log a + b log x; None with fewer than two distinct x."""
    points = [(x, y) for x, y in points if x > 0 and y > 0]
    if len({x for x, _ in points}) < 2:
        return None
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
    return math.exp(mean_y - slope * mean_x), slope


def _linear_fit(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
    return mean_y - slope * mean_x, slope


FIT_POINTS = 3
"""Extrapolations fit the largest this-many measured sizes, where the growth is steepest."""


def _predict(rows: Sequence[Row], side: str, key: str, resources: int) -> tuple[float, float] | None:
    points = [(row.program["resources"], (row.program if side == "program" else row.baseline or {}).get(key, 0.0))
              for row in rows if row.measured and (side == "program" or row.baseline)]
    fit = _power_fit(sorted(points)[-FIT_POINTS:])
    if fit is None:
        return None
    scale, exponent = fit
    return scale * resources ** exponent, exponent


def _timeout(budget: float) -> float:
    # Room over the budget for a prediction that was short, and for the worker's imports.
    return budget * 1.5 + 60


def run_sizes(topologies: Sequence[Topology], *, budget: float, source: Path, workdir: Path) -> list[Row]:
    rows: list[Row] = []
    for topology in sorted(topologies, key=topology_resources):
        row = Row(topology, load_average=os.getloadavg()[0])
        rows.append(row)
        expected = topology_resources(topology)
        predicted = _predict(rows, "program", "wall_s", expected)
        if predicted is not None and predicted[0] > budget:
            row.note = f"not run: predicted {predicted[0]:.0f} s > budget {budget:.0f} s"
            print(f"{topology.label}: {expected} resources, {row.note}", flush=True)
            continue
        print(f"{topology.label}: {expected} resources, program...", flush=True)
        registrations = workdir / f"registrations-{topology.databases}-{topology.namespaces}-{topology.grants}.jsonl"
        size_args = ["--size", f"{topology.databases},{topology.namespaces},{topology.grants},{topology.externals}",
                     "--seed", str(topology.seed), "--src", str(source)]
        row.program = _worker(["program", *size_args, "--registrations", str(registrations)], timeout=_timeout(budget))
        if row.program is None:
            row.note = f"stopped: over {_timeout(budget):.0f} s"
            continue
        print(f"  {row.program['wall_s']:.1f} s wall, {row.program['cpu_s']:.1f} s CPU, "
              f"{row.program['peak_rss_mb']:.0f} MB; baseline...", flush=True)
        row.baseline = _worker(["baseline", "--registrations", str(registrations), "--src", str(source)],
                               timeout=_timeout(budget))
        registrations.unlink(missing_ok=True)
        if row.baseline is not None:
            print(f"  baseline {row.baseline['wall_s']:.1f} s wall, {row.baseline['cpu_s']:.1f} s CPU; "
                  f"ratio {row.program['wall_s'] / row.baseline['wall_s']:.2f}", flush=True)
    _extrapolate(rows)
    return rows


def _extrapolate(rows: list[Row]) -> None:
    measured = [row for row in rows if row.measured]
    for row in rows:
        if row.measured:
            continue
        resources = topology_resources(row.topology)
        values: dict[str, Any] = {"resources": resources}
        notes = ["resources: formula"]
        for side in ("program", "baseline"):
            for key in ("wall_s", "cpu_s"):
                predicted = _predict(measured, side, key, resources)
                if predicted is not None:
                    values[f"{side}_{key}"] = predicted[0]
                    if key == "wall_s":
                        notes.append(f"{side} time ∝ R^{predicted[1]:.2f}")
            points = [(r.program["resources"], (r.program if side == "program" else r.baseline)["peak_rss_mb"])
                      for r in measured if side == "program" or r.baseline]
            fit = _linear_fit(sorted(points)[-FIT_POINTS:])
            if fit is not None:
                values[f"{side}_peak_rss_mb"] = fit[0] + fit[1] * resources
        per_resource = _linear_fit([(r.program["resources"], r.program["manifest_bytes"]) for r in measured])
        if per_resource is not None:
            values["manifest_bytes"] = per_resource[0] + per_resource[1] * resources
        notes.append(f"fits over the {min(FIT_POINTS, len(measured))} largest measured sizes" if len(measured) >= 2
                     else "too few measured sizes to extrapolate times")
        row.extrapolated = values
        row.note = "; ".join([row.note, *notes]).strip("; ")


CSV_FIELDS = (
    "size", "databases", "stand_ins", "externals", "namespaces", "grants", "resources", "formula_resources",
    "policies", "manifest_bytes", "program_wall_s", "program_cpu_s", "program_gc_s", "program_peak_rss_mb",
    "baseline_wall_s", "baseline_cpu_s", "baseline_peak_rss_mb", "ratio_wall", "ratio_cpu",
    "program_ms_per_resource", "load_average", "measured", "note",
)


def _round(value: Any, digits: int = 2) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def csv_rows(rows: Sequence[Row]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        topology = row.topology
        record: dict[str, Any] = {
            "size": topology.label, "databases": topology.databases, "stand_ins": topology.stand_ins,
            "externals": topology.externals, "namespaces": topology.namespaces, "grants": topology.grants,
            "formula_resources": topology_resources(topology), "policies": topology.databases + topology.grants,
            "load_average": row.load_average, "measured": "measured" if row.measured else "extrapolated",
            "note": row.note,
        }
        if row.measured:
            program, baseline = row.program, row.baseline or {}
            record.update({
                "resources": program["resources"], "manifest_bytes": program["manifest_bytes"],
                "policies": program["types"].get("kubernetes:security.istio.io/v1:AuthorizationPolicy", 0),
                "program_wall_s": program["wall_s"], "program_cpu_s": program["cpu_s"], "program_gc_s": program["gc_s"],
                "program_peak_rss_mb": program["peak_rss_mb"],
                "baseline_wall_s": baseline.get("wall_s"), "baseline_cpu_s": baseline.get("cpu_s"),
                "baseline_peak_rss_mb": baseline.get("peak_rss_mb"),
            })
        else:
            record.update({key: value for key, value in row.extrapolated.items()})
            record["resources"] = row.extrapolated.get("resources")
        for kind in ("wall", "cpu"):
            program_time, baseline_time = record.get(f"program_{kind}_s"), record.get(f"baseline_{kind}_s")
            record[f"ratio_{kind}"] = program_time / baseline_time if program_time and baseline_time else None
        if record.get("program_wall_s") and record.get("resources"):
            record["program_ms_per_resource"] = 1000 * record["program_wall_s"] / record["resources"]
        if isinstance(record.get("manifest_bytes"), float):
            record["manifest_bytes"] = int(record["manifest_bytes"])
        out.append({name: _round(record.get(name)) for name in CSV_FIELDS})
    return out


def write_csv(path: Path, records: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(fields))
        writer.writeheader()
        for record in records:
            writer.writerow({key: "" if record.get(key) is None else record[key] for key in fields})


def markdown_table(records: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    def cell(value: Any) -> str:
        if value is None or value == "":
            return "–"
        if isinstance(value, float):
            return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    lines = ["| " + " | ".join(title for _, title in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(record.get(key)) for key, _ in columns) + " |" for record in records]
    return "\n".join(lines)


BENCH_COLUMNS = (
    ("size", "size"), ("resources", "resources"), ("manifest_bytes", "manifest bytes"),
    ("program_wall_s", "program s"), ("program_cpu_s", "program CPU s"), ("program_gc_s", "in GC s"),
    ("program_peak_rss_mb", "peak MB"), ("baseline_wall_s", "baseline s"), ("ratio_wall", "ratio"),
    ("ratio_cpu", "ratio (CPU)"), ("load_average", "load"), ("measured", "row"),
)
LAYOUT_FIELDS = (
    "size", "source", "layout", "policies", "manifest_bytes", "rbac_bytes", "change_objects",
    "change_bytes_mean", "change_bytes_max", "registered_resources",
)
LAYOUT_COLUMNS = (
    ("size", "size"), ("layout", "layout"), ("policies", "policies"), ("manifest_bytes", "manifest bytes"),
    ("rbac_bytes", "waypoint RBAC bytes (est.)"), ("change_bytes_mean", "one-grant change rewrites, bytes (mean)"),
    ("change_bytes_max", "(max)"), ("registered_resources", "registered resources"),
)


def layout_rows(topologies: Sequence[Topology], rows: Sequence[Row], source: Path) -> list[dict[str, Any]]:
    """Layout metrics per size: from a measured mock run where there is one, else from policies
    synthesized from the program's one-grant template (checked against a measured run first)."""
    measured = {row.topology: row.program["layout"] for row in rows if row.measured}
    template = _policy_template(source)
    for topology, metrics in measured.items():
        synthesized = layout_metrics(synthesized_policies(topology, template))
        if synthesized != metrics:
            raise RuntimeError(f"{topology.label}: synthesized grant policies differ from the mock run's")
        break
    records = []
    for topology in topologies:
        if topology in measured:
            metrics, origin = measured[topology], "mock run"
        else:
            metrics = layout_metrics(synthesized_policies(topology, template))
            origin = "synthesized"
        resources = topology_resources(topology)
        for layout, values in metrics.items():
            # Fewer policies are fewer registered resources; nothing else changes.
            registered = resources - metrics["per_grant"]["policies"] + values["policies"]
            records.append({"size": topology.label, "source": origin, "layout": layout.replace("_", "-"),
                            **{key: _round(value, 1) for key, value in values.items()},
                            "registered_resources": registered})
    return records


def plot(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, (times, ratios) = plt.subplots(1, 2, figsize=(12, 4.8))
    for side, colour in (("program", "tab:blue"), ("baseline", "tab:grey")):
        for kind, style in (("measured", "o-"), ("extrapolated", "o--")):
            points = [(r["resources"], r[f"{side}_wall_s"]) for r in records
                      if r["measured"] == kind and r.get(f"{side}_wall_s") and r.get("resources")]
            if kind == "extrapolated" and points:
                anchors = [(r["resources"], r[f"{side}_wall_s"]) for r in records
                           if r["measured"] == "measured" and r.get(f"{side}_wall_s")]
                points = sorted(anchors)[-1:] + points
            if points:
                xs, ys = zip(*sorted(points))
                # An extrapolated line starts from the last measured point, which keeps its own marker.
                times.plot(xs, ys, style, color=colour, mfc="white" if kind == "extrapolated" else colour,
                           markevery=slice(1, None) if kind == "extrapolated" else None, label=f"{side} ({kind})")
    times.axhline(TARGET_SECONDS, color="tab:red", linestyle=":", label=f"target {TARGET_SECONDS:.0f} s")
    times.set(xscale="log", yscale="log", xlabel="registered resources", ylabel="wall seconds (mock engine)",
              title="Planning time")
    times.grid(True, which="both", alpha=0.3)
    times.legend(fontsize=8)
    for kind, style in (("ratio_wall", "o-"), ("ratio_cpu", "s-")):
        points = [(r["resources"], r[kind]) for r in records if r.get(kind) and r["measured"] == "measured"]
        if points:
            xs, ys = zip(*sorted(points))
            ratios.plot(xs, ys, style, label=kind.replace("ratio_", "program / baseline, "))
    ratios.axhline(TARGET_RATIO, color="tab:red", linestyle=":", label=f"target {TARGET_RATIO}×")
    ratios.set(xscale="log", xlabel="registered resources", ylabel="program / baseline",
               title="Overhead over the SDK floor (measured sizes)")
    ratios.set_ylim(bottom=0)
    ratios.grid(True, which="both", alpha=0.3)
    ratios.legend(fontsize=8)
    def resources_label(value: float, _: Any) -> str:
        # Plain numbers at 1, 2 and 5 times a power of ten.
        leading = round(value / 10 ** math.floor(math.log10(value))) if value > 0 else 0
        return f"{value:,.0f}" if leading in (1, 2, 5) else ""

    for axes in (times, ratios):
        axes.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(resources_label))
        axes.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(resources_label))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_tables(path: Path, bench: Sequence[Mapping[str, Any]], layout: Sequence[Mapping[str, Any]], mode: str) -> None:
    text = [
        f"<!-- written by `python -m tools.bench {mode}`; numbers from {time.strftime('%Y-%m-%d')} on "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]} -->",
        "",
        "### Planning time and size",
        "",
        markdown_table(bench, BENCH_COLUMNS),
        "",
        "### Policy layout",
        "",
        markdown_table(layout, LAYOUT_COLUMNS),
        "",
    ]
    path.write_text("\n".join(text))


def profile(topology: Topology, source: Path, out: Path) -> None:
    """One program run under pyinstrument (main thread); the text tree goes to `out`."""
    try:
        import pyinstrument
    except ImportError:
        raise SystemExit("--profile needs pyinstrument: pip install pyinstrument") from None
    program = _use_source(source)
    from tools.mock_engine import RecordingMocks, run_program

    tiny = Topology(1, 1, 1)
    run_program(tiny.config(), RecordingMocks(tiny.load_balancers()), program=program)
    profiler = pyinstrument.Profiler(interval=0.001)
    with _GcClock() as clock:
        profiler.start()
        run_program(topology.config(), RecordingMocks(topology.load_balancers()), program=program)
        profiler.stop()
    out.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    areas = profile_areas(profiler.last_session.root_frame())
    total = sum(areas.values()) or 1.0
    print(f"{topology.label}: {total:.1f} s sampled on the main thread, {clock.seconds:.1f} s of it in the garbage "
          "collector (charged below to whatever allocated when it ran)")
    for area, seconds in sorted(areas.items(), key=lambda item: -item[1]):
        print(f"  {100 * seconds / total:5.1f}%  {seconds:6.2f} s  {area}")


AREAS = (
    ("project code (components/, tools/, __main__.py)", ("/components/", "/tools/", "__main__.py")),
    ("Pulumi resource registration (runtime/resource.py, resource.py)", ("pulumi/runtime/resource.py", "pulumi/resource.py")),
    ("Pulumi serialization (runtime/rpc.py, known_types)", ("pulumi/runtime/rpc.py", "pulumi/runtime/known_types.py")),
    ("Pulumi Output machinery (output.py)", ("pulumi/output.py",)),
    ("Pulumi mock engine (runtime/mocks.py)", ("pulumi/runtime/mocks.py",)),
    ("pulumi-kubernetes / pulumi-random classes", ("pulumi_kubernetes/", "pulumi_random/")),
    ("other Pulumi SDK", ("pulumi/",)),
    ("asyncio event loop and tasks", ("asyncio/", "selectors.py")),
    ("typing / inspect (SDK type metadata)", ("typing.py", "inspect.py", "typing_extensions.py")),
    ("protobuf", ("protobuf/", "google/")),
    ("threads (executor)", ("concurrent/", "threading.py")),
)


def classify(path: str) -> str:
    for area, markers in AREAS:
        if any(marker in path for marker in markers):
            return area
    return "other (stdlib, imports)"


def profile_areas(root: Any) -> dict[str, float]:
    """Self time of each pyinstrument frame, summed by area."""
    areas: Counter = Counter()
    stack = [(root, "")]
    while stack:
        frame, parent_path = stack.pop()
        # pyinstrument puts a frame's own time in a synthetic `[self]` child without a path.
        path = frame.file_path or parent_path
        own = frame.time - sum(child.time for child in frame.children)
        areas[classify(path)] += max(own, 0.0)
        stack.extend((child, path) for child in frame.children)
    return dict(areas)


# --- Command line -----------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} (the default), about a minute")
    mode.add_argument("--full", action="store_true", help=f"sizes {FULL_SIZES}")
    mode.add_argument("--sizes", nargs="+", type=parse_size, metavar="D,N,G[,E]",
                      help="sizes to run; E of the D databases get an address instead of a stand-in")
    mode.add_argument("--profile", type=parse_size, metavar="D,N,G[,E]", help="profile one run with pyinstrument")
    mode.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, default=900.0,
                        help="seconds: a size predicted to take longer is extrapolated, not run (default 900)")
    parser.add_argument("--layout-sizes", nargs="*", type=parse_size, metavar="D,N,G",
                        help=f"sizes for the policy-layout comparison (default {LAYOUT_SIZES})")
    parser.add_argument("--out", type=Path, default=DOCS, help="directory for the CSVs, plot and tables (default docs/)")
    parser.add_argument("--src", type=Path, default=ROOT, help="the checkout whose program is measured (default this one)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib needed)")
    parser.add_argument("--size", type=parse_size, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=argparse.SUPPRESS)
    parser.add_argument("--registrations", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind = args.worker[0]
        if kind == "program":
            topology = Topology(args.size.databases, args.size.namespaces, args.size.grants, args.size.externals, args.seed)
            result = worker_program(topology, args.src, args.registrations)
        else:
            result = worker_baseline(args.registrations, args.src)
        print(json.dumps(result))
        return 0

    if args.profile:
        args.out.mkdir(parents=True, exist_ok=True)
        profile(args.profile, args.src, args.out / "profile-pyinstrument.txt")
        return 0

    if args.sizes:
        sizes, label = list(args.sizes), "--sizes " + " ".join(
            f"{t.databases},{t.namespaces},{t.grants}" + (f",{t.externals}" if t.externals else "") for t in args.sizes)
    elif args.full:
        sizes, label = [Topology(*size) for size in FULL_SIZES], "--full"
    else:
        sizes, label = [Topology(*size) for size in QUICK_SIZES], "--quick"
    layout_sizes = list(args.layout_sizes) if args.layout_sizes is not None else [Topology(*size) for size in LAYOUT_SIZES]

    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        rows = run_sizes(sizes, budget=args.budget, source=args.src, workdir=Path(workdir))
    bench = csv_rows(rows)
    write_csv(args.out / "bench.csv", bench, CSV_FIELDS)
    try:
        layout = layout_rows(layout_sizes, rows, args.src)
    except RuntimeError as error:  # a program under --src with another policy layout
        print(f"policy-layout comparison skipped: {error}", file=sys.stderr)
        layout = []
    write_csv(args.out / "policy-layout.csv", layout, LAYOUT_FIELDS)
    write_tables(args.out / "bench-tables.md", bench, layout, label)
    if not args.no_plot:
        plot(args.out / "bench.png", bench)
    print()
    print(markdown_table(bench, BENCH_COLUMNS))
    print()
    print(markdown_table(layout, LAYOUT_COLUMNS))
    print(f"\nwrote {', '.join(str(args.out / name) for name in ('bench.csv', 'policy-layout.csv', 'bench-tables.md'))}"
          f"{'' if args.no_plot else ', ' + str(args.out / 'bench.png')} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
