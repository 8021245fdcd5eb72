"""Builders shared by the program tests: the dev stack's config, mocked LoadBalancers, look-ups."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from components.config import stack_file_values
from tools.mock_engine import ProgramRun, RecordingMocks, run_program

ROOT = Path(__file__).resolve().parent.parent
DEV_CONFIG = stack_file_values(ROOT / "Pulumi.dev.yaml")
# Documentation addresses (TEST-NET-3), as a cloud would report for the two stand-ins.
DEV_LOAD_BALANCERS = {"postgres-1": {"ip": "203.0.113.10"}, "postgres-2": {"ip": "203.0.113.11"}}


def dev_config(**overrides: Any) -> dict[str, Any]:
    config = copy.deepcopy(DEV_CONFIG)
    config.update(overrides)
    return config


def run(config: dict[str, Any] | None = None, load_balancers: dict[str, dict] | None = None) -> ProgramRun:
    lbs = DEV_LOAD_BALANCERS if load_balancers is None else load_balancers
    return run_program(dev_config() if config is None else config, RecordingMocks(lbs))


def objects(program: ProgramRun, kind: str) -> dict[str, dict[str, Any]]:
    """Rendered objects of one kind, keyed `namespace/name` (or `name` when cluster-scoped)."""
    found = {}
    for manifest in program.manifests():
        if manifest["kind"] == kind:
            metadata = manifest["metadata"]
            key = f"{metadata['namespace']}/{metadata['name']}" if "namespace" in metadata else metadata["name"]
            found[key] = manifest
    return found
