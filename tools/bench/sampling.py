"""The profiler a measuring process runs under with `--profile-tree`: pyinstrument on the main
thread, its text tree written out, and self time summed by area of code, by file and inside a few
operations (see `profile` for how the two runs are compared)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .timing import timed

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
