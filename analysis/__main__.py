"""`python -m analysis <path> [--format text|json|mermaid]`: findings and access matrix; exit 1 on an Error."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict

from . import MeshIndex, Severity, access_matrix, analyze, load_manifests, render_findings, render_mermaid, render_table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    parser.add_argument("path", help="a YAML file, or a directory searched recursively for *.yaml and *.yml")
    parser.add_argument(
        "--format",
        choices=("text", "json", "mermaid"),
        default="text",
        help="json prints one object with findings and matrix; mermaid prints the diagram, findings go to stderr",
    )
    args = parser.parse_args(argv)

    index = MeshIndex(load_manifests(args.path))
    findings = analyze(index)
    matrix = access_matrix(index)
    if args.format == "json":
        report = {"findings": [asdict(finding) for finding in findings], "matrix": matrix.to_dict()}
        print(json.dumps(report, indent=2, sort_keys=True))
    elif args.format == "mermaid":
        # stdout stays a valid diagram to paste into a pull request.
        print(render_mermaid(matrix))
        if findings:
            print(render_findings(findings), file=sys.stderr)
    else:
        print(render_findings(findings) or "No findings.")
        print()
        print(render_table(matrix))
    return 1 if any(finding.severity is Severity.ERROR for finding in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
