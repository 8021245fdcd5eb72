"""The benchmark's generated manifests (tests/analysis/scale.py) are what the program renders, and the
analysis of them is deterministic: no timing here, `python tests/analysis/scale.py` measures."""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import MeshIndex, access_matrix, analyze, render_findings, render_mermaid, render_table
from stack import parse_config
from stack.access import access_matrix as declared_matrix
from tests.support import run

_SPEC = importlib.util.spec_from_file_location("scale", Path(__file__).with_name("scale.py"))
assert _SPEC is not None and _SPEC.loader is not None
scale = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(scale)


def ordered(manifests: list[dict]) -> list[dict]:
    return sorted(manifests, key=lambda m: (m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"], str(m)))


@pytest.mark.parametrize("size", [(4, 3, 6), (8, 5, 20)])
def test_generated_manifests_are_what_the_program_applies_for_the_same_config(size):
    assert ordered(scale.manifests(*size)) == ordered(run(scale.stack_config(*size), {}).applied())


def test_generated_topology_grants_every_namespace_and_no_pair_twice():
    granted = scale.grants(10, 30, 100)
    assert sorted(granted) == sorted(scale.namespace_name(index) for index in range(30))
    assert sum(map(len, granted.values())) == 100
    assert all(len(set(databases)) == len(databases) for databases in granted.values())


def test_analysis_of_a_generated_set_is_what_its_config_declares():
    size = (12, 10, 40)
    matrix = access_matrix(scale.manifests(*size))
    declared = declared_matrix(parse_config(scale.stack_config(*size)))
    computed = {client: {d.service_entry.name: matrix.decision(client, d.label).value for d in matrix.destinations}
                for client in matrix.clients}
    assert computed == declared


def test_the_same_manifests_in_any_order_give_byte_identical_output(k8s):
    # The seed's egress namespace and waypoint are the generated set's already: no object twice.
    seed = [m for m in k8s.seed(protected=False) if m["kind"] not in ("Gateway",) and m["metadata"]["name"] != k8s.EGRESS]
    opted_out = k8s.workload("legacy", "team-1", labels={"istio.io/dataplane-mode": "none"})
    manifests = [*scale.manifests(12, 10, 40), *seed, opted_out]
    shuffled = list(manifests)
    random.Random(7).shuffle(shuffled)

    def outputs(documents: list[dict]) -> tuple[str, ...]:
        index = MeshIndex(documents)
        matrix = access_matrix(index)
        return matrix.to_json(), render_table(matrix), render_mermaid(matrix), render_findings(analyze(index))

    assert outputs(manifests) == outputs(shuffled)


def test_output_does_not_turn_on_the_interpreters_hash_seed(k8s, tmp_path):
    """Sets and dicts iterate in an order that changes with PYTHONHASHSEED: everything printed is sorted."""
    seed = [m for m in k8s.seed(protected=False) if m["kind"] not in ("Gateway",) and m["metadata"]["name"] != k8s.EGRESS]
    opted_out = k8s.workload("legacy", "team-1", labels={"istio.io/dataplane-mode": "none"})
    unlocked = [k8s.namespace(f"open-{index}") for index in range(6)]  # many names for a finding to list
    scale.write(tmp_path, [*scale.manifests(12, 10, 40), *seed, opted_out, *unlocked])
    root = Path(__file__).resolve().parents[2]

    def printed(hash_seed: str, output: str) -> str:
        command = [sys.executable, "-m", "analysis", str(tmp_path), "--format", output]
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
        return subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True).stdout

    # Two strings of a set come out in either order; a few seeds make a difference show.
    assert len({printed(hash_seed, "json") for hash_seed in "12345"}) == 1
    for output in ("text", "mermaid"):
        assert printed("1", output) == printed("2", output) != ""
