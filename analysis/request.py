"""One connection, or one HTTP request, from a client to a ServiceEntry port, and its verdict: the
waypoint's for an ambient client (`authz`), its sidecars' and the egress gateway's for a client
namespace that runs sidecars (`sidecar_access`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .authz import client_outside_ambient, port_rules
from .istio import DEFAULT_ROOT_NAMESPACE, NEWEST_SUPPORTED, Istio, IstioVersion, OutboundTrafficPolicy
from .manifests import SERVICE_ENTRY, Mesh, MeshIndex, ObjectRef, as_index
from .mesh import Enrollment, enrollment
from .policy import DEFAULT_TRUST_DOMAIN, Facts
from .sidecar_access import Asked, verdict
from .verdict import Verdict


@dataclass(frozen=True)
class Request:
    source_namespace: str
    destination: ObjectRef  # the ServiceEntry
    port: int  # the ServiceEntry port the client dials
    # None: some workload of the namespace, which one not said; clauses on identities may then be
    # undecided. The access matrix always names one (`default` for a bare namespace row).
    service_account: str | None = None
    # None: the protocol the ServiceEntry declares for the port, which is what the waypoint uses. An
    # egress gateway (sidecar mode) parses what its server's protocol says, whatever is asked.
    protocol: str | None = None
    # HTTP only. None leaves the attribute open: a rule on it then holds for some requests only.
    method: str | None = None
    path: str | None = None  # may carry a query string, which paths are matched without
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    host: str | None = None  # None: the ServiceEntry's first host, as a client dialling it sends
    headers: Mapping[str, str] | None = field(default=None, hash=False)


def evaluate(
    mesh: Mesh,
    request: Request,
    *,
    istio_version: IstioVersion | str = NEWEST_SUPPORTED,
    root_namespace: str = DEFAULT_ROOT_NAMESPACE,
    outbound_traffic_policy: OutboundTrafficPolicy | str = OutboundTrafficPolicy.ALLOW_ANY,
) -> Verdict:
    """The waypoint's verdict on `request` under that Istio release, or for a client namespace that
    runs sidecars, its sidecars' and egress gateway's (with the mesh's outbound traffic policy);
    raises LookupError when the destination ServiceEntry is not in the manifests."""
    return judge(as_index(mesh), request, Istio.of(istio_version, root_namespace, outbound_traffic_policy))


def judge(index: MeshIndex, request: Request, istio: Istio) -> Verdict:
    """`evaluate` for callers that hold an index and the installation already."""
    service_entry = index.get(SERVICE_ENTRY, request.destination)
    if service_entry is None:
        raise LookupError(f"ServiceEntry {request.destination} not found")
    if enrollment(index, request.source_namespace) is Enrollment.SIDECAR:
        asked = Asked.of(request.method, request.path, request.host, request.headers)
        client = (request.source_namespace, request.service_account, request.trust_domain)
        return verdict(index, client, service_entry, request.port, istio, asked)
    outside = client_outside_ambient(index, request.source_namespace)
    if outside is not None:
        return outside
    port = port_rules(index, service_entry, request.port, istio, protocol=request.protocol)
    facts = Facts(
        namespace=request.source_namespace,
        service_account=request.service_account,
        trust_domain=request.trust_domain,
        port=request.port,
        host=request.host or port.host,
        method=request.method,
        path=request.path,
        headers=None if request.headers is None else {name.lower(): v for name, v in request.headers.items()},
    )
    return port.decide(facts, istio)
