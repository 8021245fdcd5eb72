"""`python -m analysis <path>`: findings and access matrix, for one Istio release; exit 1 on an Error."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import TypeVar

from . import (
    HttpRequest,
    IstioVersion,
    MeshIndex,
    OutboundTrafficPolicy,
    Severity,
    access_matrix,
    analyze,
    load_manifests,
    render_findings,
    render_mermaid,
    render_table,
)
from .istio import DEFAULT_ROOT_NAMESPACE, NEWEST_SUPPORTED

Parsed = TypeVar("Parsed")


def _argument(parse: Callable[[str], Parsed]) -> Callable[[str], Parsed]:
    """An argparse type that shows the parser's own message, which says what is expected."""

    def convert(text: str) -> Parsed:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from error

    return convert


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    parser.add_argument("path", help="a YAML file, or a directory searched recursively for *.yaml and *.yml")
    parser.add_argument(
        "--format",
        choices=("text", "json", "mermaid"),
        default="text",
        help="json prints one object with findings and matrix; mermaid prints the diagram, findings go to stderr",
    )
    parser.add_argument(
        "--istio-version",
        type=_argument(IstioVersion.parse),
        default=NEWEST_SUPPORTED,
        metavar="1.MINOR[.PATCH]",
        help=f"the Istio release whose semantics apply, 1.24 to 1.31 (default: {NEWEST_SUPPORTED})",
    )
    parser.add_argument(
        "--root-namespace",
        default=DEFAULT_ROOT_NAMESPACE,
        help=f"the mesh's root namespace, for GatewayClass policies (default: {DEFAULT_ROOT_NAMESPACE})",
    )
    parser.add_argument(
        "--outbound-traffic-policy",
        type=OutboundTrafficPolicy,
        choices=tuple(OutboundTrafficPolicy),
        default=OutboundTrafficPolicy.ALLOW_ANY,
        help="the mesh config's outboundTrafficPolicy.mode, which sidecars without a Sidecar resource that sets its own "
        "follow; the manifests do not show it (default: ALLOW_ANY, Istio's default)",
    )
    parser.add_argument(
        "--request",
        type=_argument(HttpRequest.parse),
        action="append",
        default=[],
        metavar="'METHOD:/PATH [name=value ...]'",
        help="also judge this HTTP request for every cell, e.g. GET:/get or 'POST:/post host=api.example.com "
        "x-team=a'; repeatable",
    )
    parser.add_argument(
        "--no-reasons",
        dest="reasons",
        action="store_false",
        help="leave out each cell's reason (text and json): a million cells' reasons are some 500 MB",
    )
    args = parser.parse_args(argv)
    if args.request and args.format == "mermaid":
        parser.error("--request is shown in the text and json formats; a Mermaid diagram holds one matrix")

    options = {
        "istio_version": args.istio_version,
        "root_namespace": args.root_namespace,
        "outbound_traffic_policy": args.outbound_traffic_policy,
    }
    index = MeshIndex(load_manifests(args.path))
    findings = analyze(index, **options)
    matrix = access_matrix(index, **options)
    requests = [(request, access_matrix(index, request=request, **options)) for request in args.request]
    if args.format == "json":
        report = {
            "istio_version": str(args.istio_version),
            "root_namespace": args.root_namespace,
            "outbound_traffic_policy": str(args.outbound_traffic_policy),
            "findings": [asdict(finding) for finding in findings],
            "matrix": matrix.to_dict(reasons=args.reasons),
            "requests": [
                {"request": str(request), "matrix": judged.to_dict(reasons=args.reasons)} for request, judged in requests
            ],
        }
        print(json.dumps(report, indent=2, sort_keys=True))
    elif args.format == "mermaid":
        # stdout stays a valid diagram to paste into a pull request.
        print(render_mermaid(matrix))
        if findings:
            print(render_findings(findings), file=sys.stderr)
    else:
        print(render_findings(findings) or "No findings.")
        print()
        print(render_table(matrix, reasons=args.reasons))
        for request, judged in requests:
            print(f"\nRequest {request}:")
            print(render_table(judged, reasons=args.reasons))
    return 1 if any(finding.severity is Severity.ERROR for finding in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
