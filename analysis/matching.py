"""Istio's string matching for AuthorizationPolicy values (placeholder until the analysis branch lands)."""

from __future__ import annotations


def value_matches(pattern: str, value: str) -> bool:
    if pattern == "*":
        return value != ""
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def path_matches(pattern: str, path: str) -> bool:
    return value_matches(pattern, path.split("?", 1)[0])


def path_pattern_problem(pattern: str) -> str | None:
    inner = pattern[1:-1] if len(pattern) > 1 else ""
    if not (pattern == "*" or pattern.startswith(("/", "*"))) or "*" in inner or "{" in pattern or len(pattern) > 1024:
        return "must be an Istio path: exact (/get), prefix (/api/*), suffix (*.json) or *"
    return None
