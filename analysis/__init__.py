"""Who can reach which external database, from Kubernetes manifests alone.

Layers, bottom up:
  manifests        load YAML (libyaml's parser) and index it (`MeshIndex`), with views derived once per index
  istio            the Istio release judged for (`IstioVersion`) and the behaviours that depend on it
  matching         Istio's matching of values, hosts, namespaces and paths, for every caller
  truth            yes, no, depends on the request, or unknown, and how they combine
  verdict          a `Decision` and its reason
  policy           AuthorizationPolicy rules, and how each clause matches a request
  sources          which clients a set of policies can tell apart
  netpol           NetworkPolicy semantics: label selectors, what a namespace's pods may send and accept
  mesh             ambient basics: enrollment (or sidecar injection), waypoints, a ServiceEntry's ports and hosts
  workloads        pods and pod templates, and those that opt out of capture
  egress           whether a namespace's pods reach any other external destination
  binding          which waypoint serves a ServiceEntry, as istiod binds it
  attachment       which policies that waypoint applies
  clients          the matrix's rows: client namespaces and the service accounts policies name
  backends         in-cluster pods behind a ServiceEntry, on evidence the manifests carry
  shadow           ServiceEntries that claim a served ServiceEntry's host or address without its waypoint
  bypass           routes around the waypoint: raw IPs, backends, shadows, workloads that opt out
  authz            the waypoint's rules for one ServiceEntry port and its verdict on a connection
  sidecar          sidecar mode: what a namespace's sidecars see (exportTo, Sidecar resources), what
                   they do with the rest (outbound traffic policy), and the pods that leave them
  egress_gateway   where sidecars route a host (VirtualService, DestinationRule subset) and what the
                   egress gateway does with it (its server, its route out, its policies)
  sidecar_access   a sidecar client's verdict for one ServiceEntry port, with the routes around the gateway
  request          one `Request` and its verdict, from whichever dataplane the client runs
  matrix           the verdict for every client (namespace or service account) and ServiceEntry port,
                   with the routes around the waypoint, and for any other external destination;
                   optionally for one `HttpRequest`
  catalogue        every finding code with its severity, headline and meaning; `Finding`
  findings         `istioctl analyze`-style checks (policy_findings: those of AuthorizationPolicies;
                   tls: TLS origination; sidecar_findings: sidecar mode)
  render           text, JSON and Mermaid output

Pure: no Pulumi, no cluster access, no project configuration.
"""

from .catalogue import Code, Finding, Severity
from .egress import external_egress
from .findings import analyze
from .istio import IstioVersion, IstioVersionError, OutboundTrafficPolicy
from .manifests import MeshIndex, ObjectRef, load_manifests
from .matrix import AccessMatrix, Destination, HttpRequest, access_matrix, default_clients
from .render import align_columns, render_findings, render_mermaid, render_table
from .request import Request, evaluate
from .verdict import Decision, Verdict

__all__ = [
    "AccessMatrix",
    "Code",
    "Decision",
    "Destination",
    "Finding",
    "HttpRequest",
    "IstioVersion",
    "IstioVersionError",
    "MeshIndex",
    "ObjectRef",
    "OutboundTrafficPolicy",
    "Request",
    "Severity",
    "Verdict",
    "access_matrix",
    "align_columns",
    "analyze",
    "default_clients",
    "evaluate",
    "external_egress",
    "load_manifests",
    "render_findings",
    "render_mermaid",
    "render_table",
]
