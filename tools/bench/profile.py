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

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from .measure import run_worker, timed
from .schedule import timeout
from .topology import Topology

T = TypeVar("T")
SAMPLING_INTERVAL = 0.002
FILES_SHOWN = 25

AREAS = (
    ("project code (components/, stack/, __main__.py)", ("/components/", "/stack/", "__main__.py")),
    ("mock engine (tools/mock_engine.py, runtime/mocks.py)", ("/tools/mock_engine.py", "pulumi/runtime/mocks.py")),
    ("bench baseline (tools/bench/)", ("/tools/bench/",)),
    ("Pulumi resource registration (runtime/resource.py, resource.py)",
     ("pulumi/runtime/resource.py", "pulumi/resource.py")),
    ("Pulumi serialization (runtime/rpc.py, known_types)", ("pulumi/runtime/rpc.py", "pulumi/runtime/known_types.py")),
    ("Pulumi Output machinery (output.py)", ("pulumi/output.py",)),
    ("pulumi-kubernetes / pulumi-random classes", ("pulumi_kubernetes/", "pulumi_random/")),
    ("other Pulumi SDK", ("pulumi/",)),
    ("pydantic (stack config)", ("pydantic",)),
    ("asyncio event loop, incl. waiting for the engine's threads", ("asyncio/", "selectors.py")),
    ("typing / inspect (SDK type metadata)", ("typing.py", "inspect.py", "typing_extensions.py")),
    ("protobuf", ("protobuf/", "google/")),
    ("traceback / linecache (stack capture)", ("traceback.py", "linecache.py", "pathlib.py")),
    ("threads (executor)", ("concurrent/", "threading.py")),
)


def _in(file: str, *functions: str) -> Callable[[str, str], bool]:
    """A frame of one of `functions`, in a file whose path ends with `file` (any file if empty)."""
    return lambda function, path: function in functions and path.endswith(file)


OPERATIONS: tuple[tuple[str, Callable[[str, str], bool]], ...] = (
    # (what, matches(function, file)): time inside the outermost such frame, children included.
    ("our constructors (components/, stack/control.py), children included",
     lambda function, path: function == "__init__" and ("/components/" in path or "/stack/control.py" in path)),
    ("pulumi-kubernetes typed constructors and reads",
     lambda function, path: "pulumi_kubernetes/" in path and function in ("__init__", "_internal_init", "get")),
    ("Output.apply / Output.all / Output.from_input", _in("pulumi/output.py", "apply", "all", "from_input")),
    ("register_outputs (component outputs)", _in("", "register_outputs")),
    ("register_resource", _in("pulumi/runtime/resource.py", "register_resource")),
    ("read_resource (reads)", _in("pulumi/runtime/resource.py", "read_resource")),
    ("_get_stack_trace (stack capture per resource)", _in("", "_get_stack_trace")),
    ("serialize_properties", _in("", "serialize_properties")),
    ("dependency expansion", _in("", "_expand_dependencies", "_add_dependency")),
)

def classify(path: str) -> str:
    for area, markers in AREAS:
        if any(marker in path for marker in markers):
            return area
    return "other (stdlib)"


def self_times(root: Any) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Self time by area and by file, and time inside each operation (outermost frames only, so
    recursion is counted once), from a pyinstrument frame tree."""
    areas: Counter[str] = Counter()
    files: Counter[str] = Counter()
    operations: Counter[str] = Counter()
    stack: list[tuple[Any, str, frozenset[str]]] = [(root, "", frozenset())]
    while stack:
        frame, parent_path, inside = stack.pop()
        # pyinstrument puts a frame's own time in a synthetic `[self]` child without a path.
        path = frame.file_path or parent_path
        own = frame.time - sum(child.time for child in frame.children)
        areas[classify(path)] += max(own, 0.0)
        files[_short(path)] += max(own, 0.0)
        entered = {what for what, matches in OPERATIONS if what not in inside and matches(frame.function, path)}
        for what in entered:
            operations[what] += frame.time
        stack.extend((child, path, inside | entered) for child in frame.children)
    return dict(areas), dict(files.most_common(FILES_SHOWN)), dict(operations)


def _short(path: str) -> str:
    """A file as `pulumi/output.py`: from its package on, for installed and standard-library code."""
    for marker in ("site-packages/", "/lib/python3."):
        _, found, tail = path.partition(marker)
        if found:
            # The standard library's path goes on with the minor version: `11/asyncio/events.py`.
            return tail if marker == "site-packages/" else tail.split("/", 1)[-1]
    return "/".join(path.rsplit("/", 2)[-2:])


def profiled(tree: Path) -> Callable[[Callable[[], T]], tuple[T, dict[str, Any]]]:
    """An observer for the measure workers: `timed`, under pyinstrument; the text tree goes to `tree`."""
    try:
        import pyinstrument
    except ImportError:
        raise SystemExit("--profile needs pyinstrument: pip install pyinstrument") from None

    def observe(run: Callable[[], T]) -> tuple[T, dict[str, Any]]:
        profiler = pyinstrument.Profiler(interval=SAMPLING_INTERVAL)
        profiler.start()
        result, timing = timed(run)
        profiler.stop()
        tree.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
        session = profiler.last_session
        assert session is not None
        areas, files, operations = self_times(session.root_frame())
        return result, {**timing, "areas": areas, "files": files, "operations": operations}

    return observe


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
