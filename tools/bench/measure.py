"""The four measurements, each in a fresh process, and how they are timed.

- program: `__main__.py` on Pulumi's mock engine (`tools.mock_engine.run_program`), after a
  one-grant warm-up in the same process, so imports and lazily loaded SDK modules are not timed.
- baseline: the same registrations and reads replayed with no logic (`baseline.py`).
- plan: `python -m tools.plan --config <stack file> --out <dir> --format json`, end to end: the
  interpreter's start, imports, the program, the YAML, the analysis, the report and its output.
- analysis: `analysis.load_manifests` on the plan's manifests, `MeshIndex`, `access_matrix` over
  the clients `make plan` asks for and `analyze`, as `make plan` runs them, after the imports.

The program, baseline and analysis workers run as `python -m tools.bench.measure <kind> ...` and
print their result as JSON on the last line; the plan runs as `make plan` does.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .layout import layout_metrics, policy_template
from .timing import Observer, T, peak_rss_mb, timed
from .topology import DEFAULT_SEED, Topology, parse_size

ROOT = Path(__file__).resolve().parents[2]
"""The checkout the benchmark's own code comes from."""


class WorkerFailed(RuntimeError):
    """A measurement's process exited with an error."""


def use_source(source: Path) -> Path:
    """Make `source` (a checkout of this project) the one whose program, components, mock engine
    and analysis are imported; returns its `__main__.py`. Call before importing any of them."""
    source = source.resolve()
    sys.path.insert(0, str(source))
    import tools

    tools.__path__.insert(0, str(source / "tools"))
    return source / "__main__.py"


def project_name(source: Path) -> str:
    """The project's name in `Pulumi.yaml`: the namespace of its config keys."""
    import yaml

    return str(yaml.safe_load((source / "Pulumi.yaml").read_text())["name"])


# --- the workers ------------------------------------------------------------------------------------

PROVIDER_PREFIXES = ("kubernetes:", "random:")
"""Custom resources come from providers; the project's own components carry its package name."""


def program_worker(topology: Topology, source: Path, registrations_out: Path | None,
                   observe: Observer[Any] = timed) -> dict[str, Any]:
    """The program's run, and what the baseline replays of it written to `registrations_out`."""
    program = use_source(source)
    from tools.mock_engine import RecordingMocks, run_program

    from .baseline import Registration, read_id, write_registrations

    # The warm-up is a one-grant stack: its two policies are the layout comparison's template.
    tiny = Topology(1, 1, 1, seed=topology.seed)
    warm_up = run_program(tiny.config(), RecordingMocks(tiny.load_balancers()), program=program)

    config, load_balancers = topology.config(), topology.load_balancers()
    run, timing = observe(lambda: run_program(config, RecordingMocks(load_balancers), program=program))
    manifests = run.manifests()
    result: dict[str, Any] = {
        **timing,
        "peak_rss_mb": peak_rss_mb(),
        "gc_threshold": gc.get_threshold(),
        "resources": len(run.resources),
        "reads": sum(1 for registered in run.resources if registered.read),
        "manifest_bytes": sum(len(json.dumps(manifest)) for manifest in manifests),
        "layout": layout_metrics(manifests),
        "policy_template": policy_template(warm_up.manifests(), tiny),
    }
    if registrations_out is not None:
        write_registrations(registrations_out, (
            Registration(registered.type, registered.name, None, read_id(registered.inputs)) if registered.read
            else Registration(registered.type, registered.name,
                              registered.manifest() if registered.type.startswith(PROVIDER_PREFIXES) else None)
            for registered in run.resources
        ))
    return result


def baseline_worker(registrations_in: Path, source: Path, gc_threshold: Sequence[int],
                    observe: Observer[Any] = timed) -> dict[str, Any]:
    """The replay, with the garbage collector set as the program's run left it: the SDK's floor
    under the same interpreter settings."""
    use_source(source)
    from tools.mock_engine import run_on_mocks

    from .baseline import baseline_program, read_registrations

    registrations = list(read_registrations(registrations_in))
    gc.set_threshold(*gc_threshold)
    run_on_mocks(baseline_program(registrations[:3]))
    run, timing = observe(lambda: run_on_mocks(baseline_program(registrations)))
    return {**timing, "peak_rss_mb": peak_rss_mb(), "resources": len(run.resources)}


def analysis_worker(manifests: Path, stack_file: Path, source: Path) -> dict[str, Any]:
    use_source(source)
    from analysis import Decision, MeshIndex, access_matrix, analyze, default_clients, load_manifests
    from analysis.matrix import client_identity
    from stack import read_stack_file
    from stack.access import declared_clients

    config = read_stack_file(stack_file).stack_config()
    declared = declared_clients(config)
    version = config.istio.version
    phases: dict[str, float] = {}

    def phase(name: str, step: Callable[[], T]) -> T:
        begun = time.perf_counter()
        value = step()
        phases[f"{name}_s"] = time.perf_counter() - begun
        return value

    def run() -> tuple[Any, list[Any]]:
        objects = phase("load", lambda: load_manifests(manifests))
        index = phase("index", lambda: MeshIndex(objects))
        # As tools/plan/report.py's `analyse` runs them: every client the manifests or the config name.
        rows = sorted(set(default_clients(index)) | set(declared))
        matrix = phase("matrix", lambda: access_matrix(index, rows, istio_version=version))
        findings = phase("findings", lambda: analyze(index, istio_version=version))
        return matrix, findings

    (matrix, findings), timing = timed(run)
    return {
        **timing, **phases, "peak_rss_mb": peak_rss_mb(), "cells": len(matrix.cells), "findings": len(findings),
        "allowed_cells": sum(1 for (client, _), verdict in matrix.cells.items()
                             if verdict.decision is Decision.ALLOW and client_identity(client)[1] is None),
    }


# --- running them -------------------------------------------------------------------------------------

def timeout(budget: float) -> float:
    # Room over the budget for a prediction that was short, and for the worker's imports.
    return budget * 1.5 + 60


def run_worker(module: str, arguments: Sequence[str], timeout: float) -> dict[str, Any] | None:
    """`python -m <module> <arguments>` in a fresh interpreter: the JSON on its last line, or None
    when it ran out of time."""
    command = [sys.executable, "-m", module, *arguments]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    try:
        completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-4000:])
        raise WorkerFailed(f"benchmark worker failed: {' '.join(arguments)}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def run_plan(topology: Topology, source: Path, workdir: Path, timeout: float) -> dict[str, Any] | None:
    """`make plan` on the topology's stack file, as a subprocess: wall time, and the CPU time and
    peak memory the kernel accounts to that process. None when it ran out of time."""
    stack_file = topology.write_stack_file(workdir / f"Pulumi.bench-{topology.argument.replace(',', '-')}.yaml",
                                           project_name(source))
    out = workdir / f"plan-{topology.argument.replace(',', '-')}"
    stdout, stderr = workdir / "plan-stdout.txt", workdir / "plan-stderr.txt"
    command = [sys.executable, "-m", "tools.plan", "--config", str(stack_file), "--out", str(out), "--format", "json",
               *topology.plan_arguments()]
    env = {**os.environ, "PYTHONPATH": str(source.resolve())}
    with stdout.open("w") as output, stderr.open("w") as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=source, env=env, stdout=output, stderr=errors)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            # wait4, not wait: the kernel's account of this one process (CPU time, peak memory).
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
    process.returncode = exit_code = os.waitstatus_to_exitcode(status)
    if exit_code < 0:
        return None
    if exit_code not in (0, 1):  # 1: findings or mismatches, which are reported, not a failure here
        sys.stderr.write(stderr.read_text()[-4000:])
        raise WorkerFailed(f"make plan failed on {stack_file.name} (exit {exit_code})")
    return {
        "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
        "exit_code": exit_code, "allowed_cells": allowed_cells(stdout.read_text()),
        "manifests": str(out / "manifests"), "stack_file": str(stack_file),
    }


def allowed_cells(plan_output: str) -> int | None:
    """ALLOW cells of namespace rows in the plan `make plan --format json` prints; None when the
    output is not a plan."""
    try:
        plan = json.loads(plan_output)
    except ValueError:
        return None
    return sum(1 for client, row in plan.get("verdicts", {}).items() if "/sa/" not in client
               for decision in row.values() if decision == "ALLOW")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.measure", description="one measurement (internal)")
    parser.add_argument("kind", choices=("program", "baseline", "analysis"))
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--size", type=parse_size)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--registrations", type=Path)
    parser.add_argument("--gc-threshold", type=lambda text: [int(part) for part in text.split(",")], default=None)
    parser.add_argument("--manifests", type=Path)
    parser.add_argument("--config", type=Path, help="the stack file the plan was made from (analysis)")
    parser.add_argument("--profile-tree", type=Path, help="profile the measured call; its text tree goes here")
    args = parser.parse_args(argv)
    observe: Observer[Any] = timed
    if args.profile_tree:
        from .sampling import profiled

        observe = profiled(args.profile_tree)
    if args.kind == "program":
        size = args.size
        result = program_worker(Topology(size.databases, size.namespaces, size.grants, size.stand_ins, args.seed),
                                args.src, args.registrations, observe)
    elif args.kind == "baseline":
        result = baseline_worker(args.registrations, args.src, args.gc_threshold or gc.get_threshold(), observe)
    else:
        result = analysis_worker(args.manifests, args.config, args.src)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
