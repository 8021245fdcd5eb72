"""`make bench`: the program, its SDK baseline, `make plan` and the analysis, from 10 to 10,000 grants.

Not a timed test: it measures and writes what it measured, into build/bench/ unless told to
publish into docs/. For each generated topology (D databases, N namespaces, G grants) it measures,
each in a fresh process: the program on Pulumi's mock engine, the bare-SDK baseline for the same
registrations and reads, `make plan` end to end, and the analysis alone on the plan's manifests.
Sizes predicted over `--budget` are extrapolated and marked. It also compares two
AuthorizationPolicy layouts. Method and columns: docs/benchmark.md.

    python -m tools.bench                  # --quick: three small sizes, about a minute
    python -m tools.bench --full           # up to D=1,000, N=1,000, G=10,000
    python -m tools.bench --full --publish # ... and copy the results into docs/
    python -m tools.bench --sizes 10,10,50 100,100,1000,20   # D,N,G[,S]: S of the D databases stand-ins
    python -m tools.bench --profile 100,100,1000   # where the program's time goes, beside the baseline's
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .layout import layout_rows
from .measure import ROOT
from .profile import profile
from .report import (
    BENCH_COLUMNS,
    CSV_FIELDS,
    LAYOUT_COLUMNS,
    LAYOUT_FIELDS,
    markdown_table,
    plot,
    record,
    targets_table,
    write_csv,
    write_tables,
)
from .schedule import run_sizes
from .topology import Topology, parse_size

QUICK_SIZES = ((10, 10, 50), (25, 25, 250), (50, 50, 500))
FULL_SIZES = ((10, 10, 100), (30, 30, 300), (100, 100, 1000), (300, 300, 3000), (1000, 1000, 10000))
LAYOUT_SIZES = ((10, 10, 50), (100, 100, 1000), (1000, 1000, 10000), (10, 1000, 10000))
BUILD = ROOT / "build" / "bench"
DOCS = ROOT / "docs"
OUTPUTS = ("bench.csv", "bench.png", "policy-layout.csv", "bench-tables.md")
PROFILE_OUTPUTS = ("profile-program.txt", "profile-baseline.txt", "profile-areas.md")


def publish(out: Path, names: Sequence[str]) -> None:
    """Copy what this run wrote into docs/, where the committed results live."""
    if out.resolve() == DOCS.resolve():
        return
    for name in names:
        if (out / name).exists():
            shutil.copy2(out / name, DOCS / name)
    print(f"published {', '.join(names)} to {DOCS}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} (the default)")
    mode.add_argument("--full", action="store_true", help=f"sizes {FULL_SIZES}")
    mode.add_argument("--sizes", nargs="+", type=parse_size, metavar="D,N,G[,S]",
                      help="sizes to run; S of the D databases are PostgreSQL stand-ins instead of existing ones")
    mode.add_argument("--profile", type=parse_size, metavar="D,N,G[,S]",
                      help="profile one size, program and baseline, with pyinstrument")
    parser.add_argument("--budget", type=float, default=900.0,
                        help="seconds: a measurement predicted to take longer is extrapolated, not run (default 900)")
    parser.add_argument("--layout-sizes", nargs="*", type=parse_size, metavar="D,N,G",
                        help=f"sizes for the policy-layout comparison (default {LAYOUT_SIZES})")
    parser.add_argument("--out", type=Path, default=BUILD, help=f"directory for the results (default {BUILD})")
    parser.add_argument("--publish", action="store_true", help="also copy the results into docs/")
    parser.add_argument("--src", type=Path, default=ROOT,
                        help="the checkout whose program is measured (default this one)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib needed)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    if args.profile:
        profile(args.profile, args.src, args.out, budget=args.budget)
        if args.publish:
            publish(args.out, PROFILE_OUTPUTS)
        return 0

    if args.sizes:
        sizes, command = list(args.sizes), "--sizes " + " ".join(topology.argument for topology in args.sizes)
    elif args.full:
        sizes, command = [Topology(*size) for size in FULL_SIZES], "--full"
    else:
        sizes, command = [Topology(*size) for size in QUICK_SIZES], "--quick"
    layout_sizes = args.layout_sizes if args.layout_sizes is not None else [Topology(*size) for size in LAYOUT_SIZES]

    started = time.perf_counter()
    rows = run_sizes(sizes, budget=args.budget, source=args.src)
    records = [record(row) for row in rows]
    write_csv(args.out / "bench.csv", records, CSV_FIELDS)
    measured = {row.topology: row.measured["program"]["layout"] for row in rows if "program" in row.measured}
    templates = [row.measured["program"]["policy_template"] for row in rows if "program" in row.measured]
    try:
        layout = layout_rows(layout_sizes, measured, templates[0]) if templates else []
    except ValueError as error:  # a program under --src with another policy layout
        print(f"policy-layout comparison skipped: {error}", file=sys.stderr)
        layout = []
    write_csv(args.out / "policy-layout.csv", layout, LAYOUT_FIELDS)
    write_tables(args.out / "bench-tables.md", records, layout, command)
    if not args.no_plot:
        plot(args.out / "bench.png", records)
    print(f"\n{markdown_table(records, BENCH_COLUMNS)}\n\n{targets_table(records)}")
    print(f"\n{markdown_table(layout, LAYOUT_COLUMNS)}")
    print(f"\nwrote {', '.join(name for name in OUTPUTS if (args.out / name).exists())} to {args.out} "
          f"in {time.perf_counter() - started:.0f} s")
    if args.publish:
        publish(args.out, OUTPUTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
