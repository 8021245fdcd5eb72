"""Which measurements run within the budget, and extrapolation for the rest.

Sizes run smallest first. Before each measurement of a size, its wall time is predicted from the
same measurement at the sizes already measured (a power law fitted on the largest of them); a
measurement predicted over `--budget` is not run, nor any that needs its output (the baseline
replays the program's registrations, the analysis reads the plan's manifests), and their rows
carry values extrapolated from the measured sizes, marked as such.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .formula import resources
from .measure import run_plan, run_worker, timeout
from .topology import Topology

MEASUREMENTS = ("program", "baseline", "plan", "analysis")
NEEDS = {"baseline": "program", "analysis": "plan"}
"""A measurement that works on another's output runs only where that one did."""
PARTS = {"plan": "analysis"}
"""A measurement whose time includes another's, which grows at its own rate: its time is predicted as
that part's plus the rest's, each fitted on its own."""
FIT_POINTS = 3
"""Extrapolations fit the largest this-many measured sizes, where the growth is steepest."""
EXTRAPOLATED_KEYS = ("wall_s", "cpu_s", "peak_rss_mb")


@dataclass
class Row:
    topology: Topology
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)
    """By measurement, what its worker reported."""
    extrapolated: dict[str, dict[str, float]] = field(default_factory=dict)
    """By measurement not run, the values predicted for it."""
    load_average: float = 0.0
    notes: list[str] = field(default_factory=list)
    manifests: Path | None = None
    """The plan's manifest directory, for the analysis, while the size runs."""
    stack_file: Path | None = None
    """The stack file the plan was made from, for the analysis."""

    @property
    def resources(self) -> int:
        return resources(self.topology.shape())


def power_fit(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """Least squares for log y = log a + b log x; None with fewer than two distinct x."""
    points = [(x, y) for x, y in points if x > 0 and y > 0]
    if len({x for x, _ in points}) < 2:
        return None
    fit = linear_fit([(math.log(x), math.log(y)) for x, y in points])
    assert fit is not None
    return math.exp(fit[0]), fit[1]


def linear_fit(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """Least squares for y = a + b x; None with fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
    return mean_y - slope * mean_x, slope


def predict(rows: Sequence[Row], measurement: str, key: str, at: int) -> tuple[float, str] | None:
    """`key` of `measurement` at `at` resources, and how it was predicted; None without two sizes."""
    if key == "peak_rss_mb":  # memory grows linearly: a fixed floor (imports) plus a cost per resource
        fit = linear_fit(_points(rows, lambda row: row.measured.get(measurement, {}).get(key)))
        return None if fit is None else (fit[0] + fit[1] * at, "linear")
    part = PARTS.get(measurement)
    if part is not None:
        rest = _power_law(rows, lambda row: _difference(row, measurement, part, key), at)
        inner = predict(rows, part, key, at)
        if rest is not None and inner is not None:
            return rest[0] + inner[0], f"{rest[1]} + {part} {inner[1]}"
    return _power_law(rows, lambda row: row.measured.get(measurement, {}).get(key), at)


def _points(rows: Sequence[Row], value: Callable[[Row], float | None]) -> list[tuple[float, float]]:
    """(resources, value) at the largest sizes that have the value."""
    points = sorted((float(row.resources), float(found)) for row in rows if (found := value(row)) is not None)
    return points[-FIT_POINTS:]


def _power_law(rows: Sequence[Row], value: Callable[[Row], float | None], at: int) -> tuple[float, str] | None:
    fit = power_fit(_points(rows, value))
    return None if fit is None else (fit[0] * at ** fit[1], f"∝ R^{fit[1]:.2f}")


def _difference(row: Row, whole: str, part: str, key: str) -> float | None:
    if whole in row.measured and part in row.measured:
        return float(row.measured[whole][key]) - float(row.measured[part][key])
    return None


def run_sizes(topologies: Sequence[Topology], *, budget: float, source: Path,
              report: Callable[[str], None] = print) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        workdir = Path(directory)
        for topology in sorted(topologies, key=lambda topology: resources(topology.shape())):
            row = Row(topology, load_average=os.getloadavg()[0])
            rows.append(row)
            report(f"{topology.label}: {row.resources:,} resources")
            for measurement in MEASUREMENTS:
                _measure(row, measurement, rows, budget=budget, source=source, workdir=workdir, report=report)
            if row.manifests is not None:
                shutil.rmtree(row.manifests.parent)
                row.manifests = None
    for row in rows:
        _extrapolate(row, rows)
    return rows


def _measure(row: Row, measurement: str, rows: Sequence[Row], *, budget: float, source: Path, workdir: Path,
             report: Callable[[str], None]) -> None:
    needed = NEEDS.get(measurement)
    if needed is not None and needed not in row.measured:
        row.notes.append(f"{measurement}: not run, needs the {needed}'s output")
        return
    predicted = predict(rows[:-1], measurement, "wall_s", row.resources)
    if predicted is not None and predicted[0] > budget:
        row.notes.append(f"{measurement}: not run, predicted {predicted[0]:.0f} s > budget {budget:.0f} s")
        report(f"  {measurement}: {row.notes[-1].split(': ', 1)[1]}")
        return
    topology = row.topology
    registrations = workdir / "registrations.jsonl"
    common = ["--src", str(source)]
    if measurement == "program":
        result = run_worker("tools.bench.measure", ["program", *common, "--size", topology.argument,
                            "--seed", str(topology.seed), "--registrations", str(registrations)], timeout(budget))
    elif measurement == "baseline":
        threshold = ",".join(str(value) for value in row.measured["program"]["gc_threshold"])
        result = run_worker("tools.bench.measure", ["baseline", *common, "--registrations", str(registrations),
                            "--gc-threshold", threshold], timeout(budget))
        registrations.unlink(missing_ok=True)
    elif measurement == "plan":
        result = run_plan(topology, source, workdir, timeout(budget))
        if result is not None:
            row.manifests = Path(result.pop("manifests"))
            row.stack_file = Path(result.pop("stack_file"))
    else:
        result = run_worker("tools.bench.measure", ["analysis", *common, "--manifests", str(row.manifests),
                                                    "--config", str(row.stack_file)], timeout(budget))
    if result is None:
        row.notes.append(f"{measurement}: stopped after {timeout(budget):.0f} s")
        report(f"  {measurement}: {row.notes[-1].split(': ', 1)[1]}")
        return
    row.measured[measurement] = result
    report(f"  {measurement}: {result['wall_s']:.1f} s wall, {result['cpu_s']:.1f} s CPU, "
           f"{result['peak_rss_mb']:.0f} MB")
    for surprise in surprises(row, measurement, result):
        row.notes.append(f"{measurement}: {surprise}")
        report(f"  {measurement}: {surprise}")


def surprises(row: Row, measurement: str, result: dict[str, Any]) -> list[str]:
    """What a run reported that its topology does not predict: then it measured something else."""
    expected = {
        "program": {"resources": row.resources},
        "baseline": {"resources": row.resources},
        # The ALLOW cells of the namespace rows are the grants; make plan exits 0 on no finding and no mismatch.
        "plan": {"allowed_cells": row.topology.grants, "exit_code": 0},
        "analysis": {"allowed_cells": row.topology.grants},
    }[measurement]
    return [f"{key} was {result.get(key)}, expected {value}" for key, value in expected.items()
            if result.get(key) != value]


def _extrapolate(row: Row, rows: Sequence[Row]) -> None:
    for measurement in MEASUREMENTS:
        if measurement in row.measured:
            continue
        values, how = {}, []
        for key in EXTRAPOLATED_KEYS:
            predicted = predict(rows, measurement, key, row.resources)
            if predicted is not None:
                values[key] = predicted[0]
                if key == "wall_s":
                    how.append(f"{measurement} time {predicted[1]}")
        if values:
            row.extrapolated[measurement] = values
            row.notes.append(f"{', '.join(how) or measurement} extrapolated from the largest measured sizes")
    if "program" not in row.measured:
        fit = linear_fit([(other.resources, float(other.measured["program"]["manifest_bytes"])) for other in rows
                          if "program" in other.measured])
        if fit is not None:
            row.extrapolated.setdefault("program", {})["manifest_bytes"] = fit[0] + fit[1] * row.resources

