"""What installing the mesh takes: Istio's ambient Helm charts with their values, and the Gateway API
CRDs' release manifest. Values follow Istio's ambient Helm install and seeds 002 and 004."""

from __future__ import annotations

from typing import Any

ISTIO_CHART_REPOSITORY = "https://istio-release.storage.googleapis.com/charts"
ISTIO_CHARTS = {"base": "istio-base", "istiod": "istiod", "cni": "istio-cni", "ztunnel": "ztunnel"}
"""Chart → release name, in install order: the CRDs, the control plane, the node agent that
captures traffic, and ztunnel (istio.io ambient/install/helm)."""
# DNS capture and IP auto-allocation became defaults in Istio 1.25 (release notes); ambient egress
# needs both, so 1.24 turns them on.
_DEFAULTS_SINCE = (1, 25)


def istio_chart_values(chart: str, version: str, *, access_logs: bool = True) -> dict[str, Any]:
    """The values one of Istio's ambient charts is installed with at `version` (x.y.z)."""
    minor = tuple(int(part) for part in version.split(".")[:2])
    values: dict[str, Any] = {}
    if chart in ("istiod", "cni"):
        values["profile"] = "ambient"
    if chart == "istiod":
        if access_logs:
            values["meshConfig"] = {"accessLogFile": "/dev/stdout"}
        if minor < _DEFAULTS_SINCE:
            values["env"] = {"PILOT_ENABLE_IP_AUTOALLOCATE": "true"}
    if chart == "cni" and minor < _DEFAULTS_SINCE:
        values["ambient"] = {"dnsCapture": True}
    return values


def gateway_api_crds_url(version: str, *, channel: str = "standard") -> str:
    """The release manifest of the Gateway API CRDs (`standard-install.yaml`)."""
    return f"https://github.com/kubernetes-sigs/gateway-api/releases/download/{version}/{channel}-install.yaml"
