"""Who can reach which external database, from Kubernetes manifests alone.

Layers, bottom up:
  manifests  load YAML and index it (`MeshIndex`)
  policy     AuthorizationPolicy rules and Istio's matching of them
  netpol     NetworkPolicy semantics: label selectors, what a namespace's pods may send and accept
  mesh       ambient semantics: enrollment, waypoint binding, which policies apply
  bypass     routes around the waypoint: raw IPs the ServiceEntry does not pin, stand-in pods
  authz      the waypoint's verdict for one `Request`
  matrix     the verdict for every client (namespace or service account) and ServiceEntry port,
             with the routes around the waypoint
  catalogue  every finding code with its severity, headline and meaning
  findings   `istioctl analyze`-style checks
  render     text, JSON and Mermaid output

Pure: no Pulumi, no cluster access, no project configuration.
"""

from .authz import Decision, Request, Verdict, evaluate
from .catalogue import Code, Severity
from .findings import Finding, analyze
from .manifests import MeshIndex, ObjectRef, load_manifests
from .matrix import AccessMatrix, Destination, access_matrix, default_clients
from .render import align_columns, render_findings, render_mermaid, render_table

__all__ = [
    "AccessMatrix",
    "Code",
    "Decision",
    "Destination",
    "Finding",
    "MeshIndex",
    "ObjectRef",
    "Request",
    "Severity",
    "Verdict",
    "access_matrix",
    "align_columns",
    "analyze",
    "default_clients",
    "evaluate",
    "load_manifests",
    "render_findings",
    "render_mermaid",
    "render_table",
]
