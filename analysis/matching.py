"""Istio's matching of AuthorizationPolicy values, written once for every caller: the analysis
evaluates policies with it, and the declared side of the project checks its grants with it.

Each function follows the istio/istio code that turns a policy value into an Envoy matcher:
  value_matches        pilot/pkg/security/authz/matcher/string.go, StringMatcherWithPrefix
  header_value_matches pilot/pkg/security/authz/matcher/header.go, HeaderMatcher (methods and
                       `request.headers[...]`)
  host_matches         the same file, HostMatcher (`hosts`)
  namespace_matches    pilot/pkg/security/authz/model/generator.go, srcNamespaceGenerator
  path_matches         matcher/header.go PathMatcher and matcher/template.go PathTemplateMatcher;
                       Envoy turns a template into a regular expression in
                       source/extensions/path/uri_template_lib/uri_template_internal.cc
  path_pattern_problem pkg/config/security/security.go, CheckValidPathTemplate (Istio >= 1.22)
"""

from __future__ import annotations

import re

WILDCARD = "*"
# Path template operators, Istio >= 1.22 (pkg/config/security/security.go).
MATCH_ONE = "{*}"
MATCH_ANY = "{**}"
# The characters a path template's literal segments may hold: RFC 3986 pchar without `*` and `/`
# (security.go validLiteral; Envoy's kLiteral), to go inside a character class ending in `-`.
_PCHAR = "a-zA-Z0-9._~%!$&'()+,;:@="
_LITERAL_SEGMENT = re.compile(f"[{_PCHAR}-]+")


def value_matches(pattern: str, value: str) -> bool:
    """Istio's string match, in Istio's order: `*` alone needs any non-empty value; then a leading
    `*` makes a suffix match, before a trailing `*` makes a prefix match (so `*abc*` is the suffix
    `abc*`); anything else, a `*` inside included, is compared exactly."""
    if pattern == WILDCARD:
        return value != ""
    if pattern.startswith(WILDCARD):
        return value.endswith(pattern[1:])
    if pattern.endswith(WILDCARD):
        return value.startswith(pattern[:-1])
    return value == pattern


def header_value_matches(pattern: str, value: str) -> bool:
    """A header (or method) match: as `value_matches`, except that `*` only asks for the header to
    be present, so it holds for an empty value too."""
    return pattern == WILDCARD or value_matches(pattern, value)


def host_matches(pattern: str, host: str) -> bool:
    """`hosts` match the request's host (authority) as headers do, ignoring case."""
    return header_value_matches(pattern.lower(), host.lower())


def namespace_matches(pattern: str, namespace: str) -> bool:
    """`namespaces` become a regular expression on the peer's identity, every `*` a `.*`, so unlike
    other values a `*` may sit anywhere: `team-*-prod` matches `team-a-prod`."""
    if WILDCARD not in pattern:
        return pattern == namespace  # what the regular expression of a literal matches, without compiling one
    return re.fullmatch(".*".join(map(re.escape, pattern.split(WILDCARD))), namespace) is not None


def path_matches(pattern: str, path: str) -> bool:
    """Whether a `paths` entry matches a request path, which may carry a query string or fragment:
    Envoy matches the path without them. A pattern with `{*}` (one path segment) or `{**}` (any
    number of segments, `/` included) is a path template; any other pattern is a string match."""
    path = re.split("[?#]", path, maxsplit=1)[0]
    if _is_template(pattern):
        return re.fullmatch(_template_regex(pattern), path) is not None
    return value_matches(pattern, path)


def path_pattern_problem(pattern: str) -> str | None:
    """Why a `paths` entry does not work as written, or None when it does.

    Istio rejects: an empty path; `{` or `}` outside `{*}` and `{**}`; an operator after `{**}`;
    in a template, a segment holding anything besides an operator or path characters (`*` and `?`
    included). Istio accepts, but the pattern cannot mean what it says: a `*` that is not one
    leading or trailing `*` (it is compared literally), a template or path not starting with `/`.
    """
    if not pattern:
        return "is empty"
    if _is_template(pattern):
        return _template_problem(pattern)
    if "{" in pattern or "}" in pattern:
        return f"holds `{{` or `}}` outside the {MATCH_ONE} and {MATCH_ANY} operators, which Istio rejects"
    if pattern == WILDCARD:
        return None
    inner = pattern[1:] if pattern.startswith(WILDCARD) else pattern[:-1] if pattern.endswith(WILDCARD) else pattern
    if WILDCARD in inner:
        return "has a `*` that Istio compares literally: a wildcard is one `*` at the start or at the end"
    if not pattern.startswith(("/", WILDCARD)):
        return "never matches: request paths start with /"
    return None


def _is_template(pattern: str) -> bool:
    return MATCH_ONE in pattern or MATCH_ANY in pattern


def _template_problem(pattern: str) -> str | None:
    if not pattern.startswith("/"):
        return "is a path template, which must start with /"
    seen_match_any = False
    for segment in pattern.strip("/").split("/"):
        if segment in (MATCH_ONE, MATCH_ANY):
            if seen_match_any:
                return f"has an operator after {MATCH_ANY}, which must be the last one"
            seen_match_any = segment == MATCH_ANY
        elif "{" in segment or "}" in segment:
            return f"has segment {segment!r}: only {MATCH_ONE} and {MATCH_ANY} may use braces"
        elif not _LITERAL_SEGMENT.fullmatch(segment):
            return (
                f"has segment {segment!r}: in a path template a segment is {MATCH_ONE}, {MATCH_ANY} "
                "or path characters only (no `*`, `?`, or empty segment)"
            )
    return None


def _template_regex(pattern: str) -> str:
    """Envoy's regular expression for a template: `*` one segment of path characters, `**` any run
    of path characters and `/`, each literal segment as itself."""
    globbed = pattern.replace(MATCH_ANY, "**").replace(MATCH_ONE, "*")
    glob_regex = {"*": f"[{_PCHAR}-]+", "**": f"[{_PCHAR}/-]*"}
    segments = globbed.removeprefix("/").split("/")
    return "/" + "/".join(glob_regex.get(segment) or re.escape(segment) for segment in segments)
