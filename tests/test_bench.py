"""The benchmark's own logic: the sizes it takes, the checks it makes of each run, its extrapolation
and its verdict on the targets. What it measures is in docs/benchmark.md; no test here is timed."""

from __future__ import annotations

import argparse
import re

import pytest

from tools.bench.measure import allowed_cells, analysis_worker
from tools.bench.report import TARGETS, targets_table
from tools.bench.schedule import Row, power_fit, predict
from tools.bench.topology import Topology, parse_size
from tools.plan.__main__ import main as plan_main

from .support import ROOT


@pytest.mark.parametrize(("text", "size"), [
    ("10,20,30", Topology(10, 20, 30)),
    ("10x20x30", Topology(10, 20, 30)),
    ("10,20,30,4", Topology(10, 20, 30, stand_ins=4)),
])
def test_a_size_is_d_n_g_and_optionally_s(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(("text", "message"), [
    ("10,20", "a size is D,N,G or D,N,G,S (got '10,20')"),
    ("ten,20,30", "a size is D,N,G or D,N,G,S (got 'ten,20,30')"),
    ("2,2,5", "G=5 exceeds D*N=4: a grant is a distinct pair"),
    ("2,2,3,3", "stand-ins must be within 0..D"),
])
def test_a_size_that_cannot_be_generated_is_refused_with_the_reason(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=f"^{re.escape(message)}$"):
        parse_size(text)


@pytest.mark.parametrize("topology", [Topology(6, 5, 12), Topology(6, 5, 12, stand_ins=2)],
                         ids=lambda topology: topology.label)
def test_the_checks_of_a_run_count_the_grants_in_the_plans_json_and_in_the_analysis(tmp_path, capsys, topology):
    """The benchmark checks each run by its ALLOW cells on namespace rows, which must be G: read from
    what `make plan --format json` prints, and from the analysis of the plan's manifests."""
    stack_file = topology.write_stack_file(tmp_path / "Pulumi.bench.yaml", "ambient-egress")
    out = tmp_path / "plan"
    assert plan_main(["--config", str(stack_file), "--out", str(out), "--format", "json",
                      *topology.plan_arguments()]) == 0
    printed = capsys.readouterr().out
    assert allowed_cells(printed) == topology.grants
    analysed = analysis_worker(out / "manifests", stack_file, ROOT)
    assert (analysed["allowed_cells"], analysed["findings"]) == (topology.grants, 0)
    assert analysed["cells"] > topology.grants  # the DENY cells are there too


def test_a_plan_output_that_is_not_json_gives_no_count():
    assert allowed_cells("Access for Istio 1.30: ...") is None


def test_a_power_law_is_recovered_from_exact_points():
    a, b = power_fit([(x, 3.0 * x**1.5) for x in (10.0, 100.0, 1000.0)])
    assert (a, b) == (pytest.approx(3.0), pytest.approx(1.5))
    assert power_fit([(10.0, 1.0), (10.0, 2.0)]) is None  # one size: no growth to fit


def test_the_plan_is_predicted_as_its_analysis_plus_the_rest_each_at_its_own_rate():
    """A plan whose analysis grows as R^1.5 and the rest as R: each part is fitted on its own, so
    the sum is predicted exactly where one power law over the sum would not be."""
    def analysis(resources: float) -> float:
        return 0.001 * resources**1.5

    def rest(resources: float) -> float:
        return 0.01 * resources

    rows = [Row(Topology(10, 10, grants)) for grants in (10, 40, 90)]
    for row in rows:
        row.measured = {"plan": {"wall_s": analysis(row.resources) + rest(row.resources)},
                        "analysis": {"wall_s": analysis(row.resources)}}
    resources = Row(Topology(10, 10, 100)).resources  # a size not measured
    value, how = predict(rows, "plan", "wall_s", resources)
    assert value == pytest.approx(analysis(resources) + rest(resources))
    assert how == "∝ R^1.00 + analysis ∝ R^1.50"
    assert predict(rows[:1], "plan", "wall_s", resources) is None  # one size: nothing to fit


def largest(**values: float) -> dict[str, object]:
    return {"size": "D=1000 N=1000 G=10000", "resources": 18_016, "extrapolated": "", **values}


def test_each_target_is_met_or_missed_by_how_much():
    records = [largest(plan_wall_s=150.0, analysis_wall_s=9.0, ratio_wall=1.3), {"size": "small", "resources": 10}]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in targets_table(records).splitlines()}
    assert rows["`make plan` end to end"].endswith("| 150 s | missed (1.2× the limit) |")
    assert rows["analysis alone"].endswith("| 9.00 s | met |")
    assert rows["program ÷ baseline (wall)"].endswith("| 1.30 × | met |")  # at the limit is within it
    assert rows["peak memory, `make plan`"].endswith("| not measured | |")
    assert sum(1 for line in rows.values() if line.endswith(("| met |", "missed (1.2× the limit) |", "| |"))) \
        == len(TARGETS) + 1  # and the header


def test_an_extrapolated_target_is_marked():
    table = targets_table([largest(plan_wall_s=90.0, extrapolated="plan")])
    assert "| ≈90.00 s | met |" in table

