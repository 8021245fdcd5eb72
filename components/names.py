"""What Kubernetes and the network accept as names and addresses, checked once for the components
and for the program's config: each check returns the problem in words, or None."""

from __future__ import annotations

import ipaddress
import json
import re
import reprlib
from typing import Any

from .values import RESERVED_NAMESPACES, is_ipv4

# Used with fullmatch: `$` would let a trailing newline through.
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_HOST_AND_PORT = re.compile(r"(?P<host>[^:/]+):(?P<port>[0-9]+)")
MAX_LABEL = 63
MAX_DNS_NAME = 253
DNS_LABEL_RULE = ("must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending "
                  "with a letter or digit")

_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 60


def shown(value: Any) -> str:
    """A value as the user wrote it, cut short; safe on any YAML (dates, anchors, deep nesting)."""
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, default=str, ensure_ascii=True)
        except (TypeError, ValueError, RecursionError):
            text = _SHOWN.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_dns_label(text: str) -> bool:
    return len(text) <= MAX_LABEL and _DNS1123_LABEL.fullmatch(text) is not None


def dns_label_problem(text: str) -> str | None:
    return None if is_dns_label(text) else DNS_LABEL_RULE


def service_name_problem(text: str) -> str | None:
    """A Kubernetes Service name is a DNS-1035 label: a DNS-1123 label that starts with a letter."""
    if not is_dns_label(text):
        return DNS_LABEL_RULE
    if not _DNS1035_LABEL.fullmatch(text):
        return "must start with a letter because it names a Kubernetes Service"
    return None


def address_problem(text: str) -> str | None:
    """An IPv4 address or a DNS name, nothing more: no scheme, no port, no path."""
    if is_ipv4(text):
        return None
    _scheme, separator, rest = text.partition("://")
    if separator:
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        return f"must be an IPv4 address or a DNS name, not a URL (got {shown(text)}); write only the host, e.g. {shown(host)}"
    host_and_port = _HOST_AND_PORT.fullmatch(text)
    if host_and_port:
        return (f"must be an IPv4 address or a DNS name without a port (got {shown(text)}); write "
                f"{shown(host_and_port['host'])} and give the port {host_and_port['port']} in its own field")
    labels = text.split(".")
    if all(label.isdigit() for label in labels):
        return f"is not a valid IPv4 address (got {shown(text)}); write four numbers 0-255, e.g. 10.20.30.40"
    if ":" in text and _is_ipv6(text):
        return f"must be an IPv4 address or a DNS name; IPv6 is not supported (got {shown(text)})"
    if len(text) > MAX_DNS_NAME or not all(is_dns_label(label) for label in labels):
        return ("must be an IPv4 address or a DNS name of lowercase letters, digits, '-' and '.' "
                f"(got {shown(text)}); e.g. orders.example.com or 10.20.30.40")
    return None


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def check_namespace_ownership(where: str, namespace: str, *, owned: bool) -> None:
    """A reserved namespace (`default`, `kube-*`, `istio-system`) is never the stack's to own."""
    if owned and namespace in RESERVED_NAMESPACES:
        raise ValueError(f"{where}: namespace {namespace!r} is reserved and never owned by a stack; "
                         "leave it to the cluster (create_namespace=False)")
