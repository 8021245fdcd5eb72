"""What the tests share: one way to run the program, the repository's stacks, and look-ups.

Nothing here runs at import time: stacks are read and the program is run when a test asks.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from stack import PROJECT, read_stack_file
from tools.mock_engine import Cluster, ProgramRun, RecordingMocks, run_program

ROOT = Path(__file__).resolve().parent.parent.parent
P = f"{PROJECT}:"
# Documentation addresses (TEST-NET-3), as a cloud would report for the dev stack's two stand-ins.
DEV_LOAD_BALANCERS = {"postgres-1": {"ip": "203.0.113.10"}, "postgres-2": {"ip": "203.0.113.11"}}
# Seed 000's verified table: each namespace reaches its own database and not the other.
SEED_000_TABLE = {
    "rds-demo-1": {"istio-egress/postgres-1": "ALLOW", "istio-egress/postgres-2": "DENY"},
    "rds-demo-2": {"istio-egress/postgres-1": "DENY", "istio-egress/postgres-2": "ALLOW"},
}


@functools.cache
def _stack_values(stack: str) -> dict[str, Any]:
    config = read_stack_file(ROOT / f"Pulumi.{stack}.yaml").config
    return {key[len(P):]: value for key, value in config.items() if key.startswith(P)}


def stack_values(stack: str, **overrides: Any) -> dict[str, Any]:
    """A repository stack's `ambient-egress:` values, keyed without the prefix, with overrides."""
    values = copy.deepcopy(_stack_values(stack))
    values.update(copy.deepcopy(overrides))
    return values


def dev_values(**overrides: Any) -> dict[str, Any]:
    return stack_values("dev", **overrides)


def run(
    config: dict[str, Any] | None = None,
    load_balancers: dict[str, dict[str, str]] | None = None,
    *,
    cluster: Cluster | None = None,
    preview: bool = False,
    **options: Any,
) -> ProgramRun:
    """The program on the mock engine: the dev stack unless `config` is given, with the dev stack's
    LoadBalancers answering unless `load_balancers` is."""
    mocks = RecordingMocks(DEV_LOAD_BALANCERS if load_balancers is None else load_balancers, cluster=cluster)
    return run_program(dev_values() if config is None else config, mocks, preview=preview, **options)


def objects(program: ProgramRun, kind: str, *, patches: bool = False) -> dict[str, dict[str, Any]]:
    """Rendered objects of one kind, keyed `namespace/name` (or `name` when cluster-scoped); the
    label patches instead of the created objects with `patches`."""
    found = {}
    for manifest in program.patches() if patches else program.manifests():
        if manifest["kind"] == kind:
            metadata = manifest["metadata"]
            key = f"{metadata['namespace']}/{metadata['name']}" if "namespace" in metadata else metadata["name"]
            found[key] = manifest
    return found
