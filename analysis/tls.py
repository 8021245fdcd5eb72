"""TLS origination a waypoint does for a DestinationRule, and whether it checks the server's name.

With `tls.mode` `SIMPLE` or `MUTUAL` the proxy wraps the connection in TLS. It verifies the server's
certificate against `caCertificates` (or the `credentialName` Secret's CA, else the system's), and
its name against `subjectAltNames`; with none given, Istio checks the name the proxy sends as SNI,
the destination host, but only while `sni` is not set (`pilot/pkg/networking/core/cluster_tls.go`).
So `sni` without `subjectAltNames` accepts any certificate the CA vouches for, whatever its name,
and `insecureSkipVerify: true` accepts any certificate at all.

istioctl's IST0128 (`NoServerCertificateVerificationDestinationLevel`) and IST0129 (port level)
fire when `caCertificates` is empty, unless `credentialName` is set with a `workloadSelector`.
This check is stricter about names and accepts the system CAs: with `sni` set and no
`caCertificates` or `credentialName` to narrow the CAs, it wants `subjectAltNames`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .catalogue import Code, Finding, report
from .manifests import DESTINATION_RULE, MeshIndex

_ORIGINATING = ("SIMPLE", "MUTUAL")


def tls_findings(index: MeshIndex) -> Iterator[Finding]:
    for rule in index.all(DESTINATION_RULE):
        for where, tls in _tls_settings(rule.spec):
            problem = _unverified(tls)
            if problem is not None:
                yield report(
                    Code.TLS_NAME_NOT_VERIFIED,
                    rule,
                    f"{where} originates TLS ({tls.get('mode')}) but {problem}, so the waypoint accepts a server "
                    f"certificate for any name; set subjectAltNames to the host it dials",
                )


def _unverified(tls: Mapping[str, Any]) -> str | None:
    if tls.get("mode") not in _ORIGINATING:
        return None
    if tls.get("insecureSkipVerify") in (True, "true"):
        return "sets insecureSkipVerify"
    if tls.get("sni") and not any(tls.get(field) for field in ("subjectAltNames", "caCertificates", "credentialName")):
        sni = tls["sni"]
        return f"sets sni \"{sni}\" with no subjectAltNames, which turns off the check of the certificate's name"
    return None


def _tls_settings(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every `tls` block, with where it is written: the rule's traffic policy, its port-level
    settings, and the same within each subset."""
    policies: list[tuple[str, Mapping[str, Any]]] = [("trafficPolicy", spec.get("trafficPolicy") or {})]
    for position, subset in enumerate(spec.get("subsets") or []):
        policies.append((f"subsets[{position}].trafficPolicy", (subset or {}).get("trafficPolicy") or {}))
    for where, policy in policies:
        if policy.get("tls"):
            yield f"{where}.tls", policy["tls"]
        for position, settings in enumerate(policy.get("portLevelSettings") or []):
            if (settings or {}).get("tls"):
                port = (settings.get("port") or {}).get("number", "?")
                yield f"{where}.portLevelSettings[{position}].tls (port {port})", settings["tls"]
