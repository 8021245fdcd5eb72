"""Where the program's time goes, beside the baseline's for the same registrations and reads.

`--profile D,N,G` runs the program and then the baseline, each in a fresh process under
pyinstrument (the main thread, wall clock: time the event loop waits for the mock engine's
executor threads shows as the event loop's), with the garbage collector's time taken from
`gc.callbacks`. Self time is summed by area of code and set side by side, with the time spent
inside a few operations that the program does and the baseline does not, or does less.

Writes profile-program.txt and profile-baseline.txt (pyinstrument's text trees) and
profile-areas.md (the comparison).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .measure import run_worker, timeout
from .sampling import FILES_SHOWN
from .topology import Topology


def profile(topology: Topology, source: Path, out: Path, *, budget: float) -> None:
    registrations = out / "profile-registrations.jsonl"
    common = ["--src", str(source), "--registrations", str(registrations)]
    print(f"{topology.label}: program under pyinstrument...", flush=True)
    program = run_worker("tools.bench.measure", ["program", *common, "--size", topology.argument,
                         "--profile-tree", str(out / "profile-program.txt")], timeout(budget))
    if program is None:
        raise SystemExit(f"the program ran over {timeout(budget):.0f} s")
    print("baseline under pyinstrument...", flush=True)
    baseline = run_worker("tools.bench.measure", [
        "baseline", *common, "--gc-threshold", ",".join(str(value) for value in program["gc_threshold"]),
        "--profile-tree", str(out / "profile-baseline.txt")], timeout(budget))
    registrations.unlink(missing_ok=True)
    if baseline is None:
        raise SystemExit(f"the baseline ran over {timeout(budget):.0f} s")
    text = comparison(topology, program, baseline)
    (out / "profile-areas.md").write_text(text)
    print(text)


def comparison(topology: Topology, program: Mapping[str, Any], baseline: Mapping[str, Any]) -> str:
    def table(title: str, key: str) -> list[str]:
        names = sorted(set(program[key]) | set(baseline[key]), key=lambda name: -program[key].get(name, 0.0))
        lines = [f"| {title} | program s | baseline s | program − baseline s |", "|---|---|---|---|"]
        for name in names:
            mine, floor = program[key].get(name, 0.0), baseline[key].get(name, 0.0)
            lines.append(f"| {name} | {mine:.2f} | {floor:.2f} | {mine - floor:+.2f} |")
        return lines

    sampled = sum(program["areas"].values()), sum(baseline["areas"].values())
    lines = [
        f"<!-- written by `python -m tools.bench --profile {topology.argument}` -->",
        "",
        f"{topology.label}: program {program['resources']:,} resources ({program['reads']:,} reads) in "
        f"{program['wall_s']:.1f} s wall, {program['cpu_s']:.1f} s CPU; baseline {baseline['wall_s']:.1f} s wall, "
        f"{baseline['cpu_s']:.1f} s CPU (ratio {program['wall_s'] / baseline['wall_s']:.2f} under the profiler). "
        f"In the garbage collector: program {program['gc_s']:.1f} s, baseline {baseline['gc_s']:.1f} s, both with "
        f"thresholds {tuple(program['gc_threshold'])}. Sampled on the main thread: {sampled[0]:.1f} s and "
        f"{sampled[1]:.1f} s; a GC pass is charged to the area that allocated when it ran.",
        "",
        "Self time by area:",
        "",
        *table("area", "areas"),
        "",
        "Time inside operations (children included; they overlap each other):",
        "",
        *table("operation", "operations"),
        "",
        f"The {FILES_SHOWN} files with the most self time in either run:",
        "",
        *table("file", "files"),
        "",
    ]
    return "\n".join(lines)
