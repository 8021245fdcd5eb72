"""What a run measured, as CSV, markdown tables and a plot.

A value extrapolated rather than measured is written `≈` in the tables and drawn dashed in the
plot; the CSV's `extrapolated` column names the measurements it holds estimates for.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .formula import reads, registrations
from .schedule import MEASUREMENTS, Row

TARGETS = (
    # (what, key, limit, unit): issue 13's targets at the largest size.
    ("`make plan` end to end", "plan_wall_s", 120.0, "s"),
    ("analysis alone", "analysis_wall_s", 15.0, "s"),
    ("peak memory, `make plan`", "plan_peak_rss_mb", 2048.0, "MB"),
    ("peak memory, analysis alone", "analysis_peak_rss_mb", 2048.0, "MB"),
    ("peak memory, program on the mock engine", "program_peak_rss_mb", 2048.0, "MB"),
    ("program ÷ baseline (wall)", "ratio_wall", 1.3, "×"),
)
ANALYSIS_PHASES = ("load_s", "index_s", "findings_s", "matrix_s")
CSV_FIELDS = (
    "size", "databases", "stand_ins", "existing", "namespaces", "grants", "resources", "registrations", "reads",
    "recorded", "manifest_bytes",
    "program_wall_s", "program_cpu_s", "program_gc_s", "program_peak_rss_mb",
    "baseline_wall_s", "baseline_cpu_s", "baseline_gc_s", "baseline_peak_rss_mb", "ratio_wall", "ratio_cpu",
    "plan_wall_s", "plan_cpu_s", "plan_peak_rss_mb", "plan_exit_code", "plan_allowed_cells",
    "analysis_wall_s", "analysis_cpu_s", "analysis_gc_s", "analysis_peak_rss_mb",
    *(f"analysis_{phase}" for phase in ANALYSIS_PHASES), "matrix_cells", "allowed_cells", "findings",
    "load_average", "extrapolated", "note",
)
BENCH_COLUMNS = (
    ("size", "size"), ("resources", "resources"), ("reads", "of which reads"), ("manifest_bytes", "manifest bytes"),
    ("program_wall_s", "program s"), ("program_gc_s", "in GC s"), ("program_peak_rss_mb", "program MB"),
    ("baseline_wall_s", "baseline s"), ("ratio_wall", "ratio"), ("ratio_cpu", "ratio (CPU)"),
    ("plan_wall_s", "plan s"), ("plan_peak_rss_mb", "plan MB"),
    ("analysis_wall_s", "analysis s"), ("analysis_peak_rss_mb", "analysis MB"), ("load_average", "load"),
)
ANALYSIS_COLUMNS = (
    ("size", "size"), ("analysis_load_s", "load YAML s"), ("analysis_index_s", "MeshIndex s"),
    ("analysis_findings_s", "analyze s"), ("analysis_matrix_s", "access_matrix s"), ("analysis_gc_s", "in GC s"),
    ("matrix_cells", "matrix cells"), ("allowed_cells", "ALLOW cells"), ("findings", "findings"),
)
LAYOUT_FIELDS = (
    "size", "source", "layout", "policies", "manifest_bytes", "rbac_bytes", "change_objects",
    "change_bytes_mean", "change_bytes_max", "resources",
)
LAYOUT_COLUMNS = (
    ("size", "size"), ("layout", "layout"), ("policies", "policies"), ("manifest_bytes", "manifest bytes"),
    ("rbac_bytes", "waypoint RBAC bytes (est.)"), ("change_bytes_mean", "one-grant change rewrites, bytes (mean)"),
    ("change_bytes_max", "(max)"), ("resources", "resources"),
)


def _round(value: Any) -> Any:
    return round(value, 2) if isinstance(value, float) else value


def record(row: Row) -> dict[str, Any]:
    """One CSV row: the size, then each measurement's values, measured or extrapolated."""
    topology, shape = row.topology, row.topology.shape()
    values: dict[str, Any] = {
        "size": topology.label, "databases": topology.databases, "stand_ins": topology.stand_ins,
        "existing": topology.existing, "namespaces": topology.namespaces, "grants": topology.grants,
        "resources": row.resources, "registrations": registrations(shape), "reads": reads(shape),
        "load_average": row.load_average, "extrapolated": ",".join(sorted(row.extrapolated)),
        "note": "; ".join(row.notes),
    }
    for measurement in MEASUREMENTS:
        found = {**row.extrapolated.get(measurement, {}), **row.measured.get(measurement, {})}
        for key, value in found.items():
            if isinstance(value, int | float) and f"{measurement}_{key}" in CSV_FIELDS:
                values[f"{measurement}_{key}"] = value
    program, analysis = row.measured.get("program", {}), row.measured.get("analysis", {})
    values["recorded"] = program.get("resources")
    values["manifest_bytes"] = program.get("manifest_bytes", row.extrapolated.get("program", {}).get("manifest_bytes"))
    values["plan_allowed_cells"] = row.measured.get("plan", {}).get("allowed_cells")
    values.update({"matrix_cells": analysis.get("cells"), "allowed_cells": analysis.get("allowed_cells"),
                   "findings": analysis.get("findings")})
    for kind in ("wall", "cpu"):
        program_time, baseline_time = values.get(f"program_{kind}_s"), values.get(f"baseline_{kind}_s")
        values[f"ratio_{kind}"] = program_time / baseline_time if program_time and baseline_time else None
    if isinstance(values["manifest_bytes"], float):
        values["manifest_bytes"] = int(values["manifest_bytes"])
    return {name: _round(values.get(name)) for name in CSV_FIELDS}


def is_estimate(values: Mapping[str, Any], key: str) -> bool:
    estimated = set(filter(None, str(values.get("extrapolated", "")).split(",")))
    if key.startswith("ratio_"):
        return bool(estimated & {"program", "baseline"})
    return key.split("_", 1)[0] in estimated or (key == "manifest_bytes" and "program" in estimated)


def write_csv(path: Path, records: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(fields))
        writer.writeheader()
        for values in records:
            writer.writerow({key: "" if values.get(key) is None else values[key] for key in fields})


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown_table(records: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for values in records:
        cells = [("≈" if values.get(key) is not None and is_estimate(values, key) else "") + _cell(values.get(key))
                 for key, _ in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_table(records: Sequence[Mapping[str, Any]]) -> str:
    """Issue 13's targets against the largest size."""
    largest = max(records, key=lambda values: values["resources"])
    lines = [f"At {largest['size']} ({largest['resources']:,} resources):", "",
             "| target | limit | result | |", "|---|---|---|---|"]
    for what, key, limit, unit in TARGETS:
        value = largest.get(key)
        if value is None:
            lines.append(f"| {what} | {limit:g} {unit} | not measured | |")
            continue
        estimate = "≈" if is_estimate(largest, key) else ""
        verdict = "met" if value <= limit else f"missed ({value / limit:.1f}× the limit)"
        lines.append(f"| {what} | {limit:g} {unit} | {estimate}{_cell(value)} {unit} | {verdict} |")
    return "\n".join(lines)


def write_tables(path: Path, records: Sequence[Mapping[str, Any]], layout: Sequence[Mapping[str, Any]],
                 command: str) -> None:
    text = [
        f"<!-- written by `python -m tools.bench {command}`; numbers from {time.strftime('%Y-%m-%d')} on "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}; ≈ marks an extrapolated value -->",
        "", "### Time, memory and size", "", markdown_table(records, BENCH_COLUMNS),
        "", "### Targets", "", targets_table(records),
        "", "### The analysis, by phase", "", markdown_table(records, ANALYSIS_COLUMNS),
        "", "### Policy layout", "", markdown_table(layout, LAYOUT_COLUMNS), "",
    ]
    path.write_text("\n".join(text))


def plot(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, (times, memory, ratios) = plt.subplots(1, 3, figsize=(16, 4.8))
    colours = {"program": "tab:blue", "baseline": "tab:grey", "plan": "tab:orange", "analysis": "tab:green"}
    for axes, suffix in ((times, "wall_s"), (memory, "peak_rss_mb")):
        for measurement, colour in colours.items():
            key = f"{measurement}_{suffix}"
            points: list[tuple[float, float, bool]] = sorted(
                (values["resources"], values[key], is_estimate(values, key)) for values in records if values.get(key))
            measured = [(x, y) for x, y, estimate in points if not estimate]
            if measured:
                axes.plot(*zip(*measured, strict=True), "o-", color=colour, label=measurement)
            # An extrapolated line starts from the last measured point.
            estimated = measured[-1:] + [(x, y) for x, y, estimate in points if estimate]
            if len(estimated) > len(measured[-1:]):
                axes.plot(*zip(*estimated, strict=True), "o--", color=colour, mfc="white",
                          markevery=slice(len(measured[-1:]), None), label=f"{measurement} (extrapolated)")
    for _, key, limit, _ in TARGETS:
        if key == "plan_wall_s":
            times.axhline(limit, color=colours["plan"], linestyle=":", label=f"plan target {limit:.0f} s")
        elif key == "analysis_wall_s":
            times.axhline(limit, color=colours["analysis"], linestyle=":", label=f"analysis target {limit:.0f} s")
        elif key == "plan_peak_rss_mb":
            memory.axhline(limit, color="tab:red", linestyle=":", label=f"target {limit / 1024:.0f} GB")
    times.set(ylabel="wall seconds", title="Time")
    memory.set(ylabel="peak MB (ru_maxrss)", title="Peak memory")
    for kind, style in (("ratio_wall", "o-"), ("ratio_cpu", "s-")):
        ratio_points = sorted((values["resources"], values[kind]) for values in records
                              if values.get(kind) and not is_estimate(values, kind))
        if ratio_points:
            ratios.plot(*zip(*ratio_points, strict=True), style, label=kind.replace("ratio_", "program ÷ baseline, "))
    ratios.axhline(1.3, color="tab:red", linestyle=":", label="target 1.3×")
    ratios.set(ylabel="program ÷ baseline", title="Overhead over the SDK floor (measured sizes)")
    ratios.set_ylim(bottom=0)

    def resources_label(value: float, _: Any) -> str:
        # Plain numbers at 1, 2 and 5 times a power of ten.
        leading = round(value / 10 ** math.floor(math.log10(value))) if value > 0 else 0
        return f"{value:,.0f}" if leading in (1, 2, 5) else ""

    for axes in (times, memory, ratios):
        axes.set(xscale="log", xlabel="resources (registrations + reads)")
        if axes is not ratios:
            axes.set(yscale="log")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=7)
        axes.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(resources_label))
        axes.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(resources_label))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
