"""Istio's value, header, host, namespace and path matching, on cases taken from Istio's own tests.

Upstream (istio/istio at 86c9f01):
  pilot/pkg/security/authz/matcher/string_test.go   TestStringMatcherWithPrefix
  pilot/pkg/security/authz/matcher/template_test.go TestPathTemplateMatcher
  pkg/config/security/security_test.go              TestCheckValidPathTemplate, TestIsValidLiteral
  tests/integration/security/authz_test.go          TestAuthz_PathTemplating, TestAuthz_PathPrecedence,
                                                    TestAuthz_ServiceAccount (`/allow?param=value`)
  security/v1beta1/authorization_policy.proto (istio/api) Operation.paths examples
"""

from __future__ import annotations

import pytest

from analysis.matching import (
    header_value_matches,
    host_matches,
    namespace_matches,
    path_matches,
    path_pattern_problem,
    value_matches,
)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        # TestStringMatcherWithPrefix: wildcardAsRequired (`.+`), prefix, suffix, exact.
        ("*", "x", True),
        ("*", "", False),
        ("-prefix-*", "-prefix-abc", True),
        ("-prefix-*", "abc-prefix-", False),
        ("*-suffix", "abc-suffix", True),
        ("*-suffix", "-suffix-abc", False),
        ("-exact", "-exact", True),
        ("-exact", "-exact-", False),
        # A leading `*` is checked before a trailing one, so `*abc*` is the suffix `abc*`.
        ("*abc*", "xabc*", True),
        ("*abc*", "xabcx", False),
        # A `*` inside is no wildcard: StringMatcherExact.
        ("a*c", "abc", False),
        ("a*c", "a*c", True),
    ],
)
def test_value_matching_checks_presence_then_suffix_then_prefix_then_exact(pattern, value, expected):
    assert value_matches(pattern, value) is expected


def test_header_wildcard_asks_only_for_presence():
    # HeaderMatcher: `*` is PresentMatch, so an empty header value matches too.
    assert header_value_matches("*", "") is True
    assert value_matches("*", "") is False
    assert header_value_matches("GET*", "GETX") is True


def test_host_matching_ignores_case():
    # HostMatcher passes ignoreCase=true to every string matcher.
    assert host_matches("*.Example.com", "API.example.COM") is True
    assert host_matches("httpbin.org", "HTTPBIN.org") is True
    assert host_matches("httpbin.org", "httpbin.org:8080") is False


@pytest.mark.parametrize(
    ("pattern", "namespace", "expected"),
    [
        ("rds-*", "rds-demo-1", True),
        ("*-1", "rds-demo-1", True),
        ("rds-*-1", "rds-demo-1", True),  # srcNamespaceGenerator: every `*` becomes `.*`
        ("rds-*-2", "rds-demo-1", False),
        ("*", "anything", True),
        ("rds-demo-1", "rds-demo-10", False),
    ],
)
def test_namespace_patterns_may_hold_a_star_anywhere(pattern, namespace, expected):
    assert namespace_matches(pattern, namespace) is expected


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        # TestAuthz_PathPrecedence and TestAuthz_ServiceAccount: the query string is not matched.
        ("/allow*", "/allow?param=value", True),
        ("/allow/admin", "/allow/admin?param=value", True),
        ("/allow", "/allow?param=value", True),
        ("/deny", "/allow?deny", False),
        ("*.json", "/data.json#top", True),
        # TestAuthz_PathTemplating, `/allow/admin/{**}`.
        ("/allow/admin/{**}", "/allow/admin/", True),
        ("/allow/admin/{**}", "/allow/admin", False),
        ("/allow/admin/{**}", "/allow/user/", False),
        ("/allow/admin/{**}", "/allow/admin?param=value", False),
        ("/allow/admin/{**}", "/allow", False),
        ("/allow/admin/{**}", "/allow/admin/temp", True),
        ("/allow/admin/{**}", "/allow/admin/temp.txt", True),
        ("/allow/admin/{**}", "/allow/admin/foo/temp.txt", True),
        # TestAuthz_PathTemplating, `/foo/{*}/bar/{**}`.
        ("/foo/{*}/bar/{**}", "/foo/buzz/bar/bat.txt", True),
        ("/foo/{*}/bar/{**}", "/foo/buzz/bar/bat.temp.txt", True),
        ("/foo/{*}/bar/{**}", "/foo/buzz/bar/bat/fuzz.txt", True),
        ("/foo/{*}/bar/{**}", "/foo/bar/bat.txt", False),
        ("/foo/{*}/bar/{**}", "/foo//bar/bat.txt", False),
        ("/foo/{*}/bar/{**}", "/foo/buzz/bar/bat", True),
        # TestAuthz_PathTemplating, `/store/{**}/cart`.
        ("/store/{**}/cart", "/store//cart", True),
        ("/store/{**}/cart", "/store/cart", False),
        ("/store/{**}/cart", "/store/foo/cart", True),
        ("/store/{**}/cart", "/store/foo/bar/cart", True),
        # Operation.paths: `/foo/{*}` matches `/foo/bar` but not `/foo/bar/baz`.
        ("/foo/{*}", "/foo/bar", True),
        ("/foo/{*}", "/foo/bar/baz", False),
        # A template's literal segments are literal: `.` is no regex wildcard.
        ("/v1.0/{*}", "/v1x0/a", False),
    ],
)
def test_paths_match_without_the_query_string_and_with_templates(pattern, path, expected):
    assert path_matches(pattern, path) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        # TestCheckValidPathTemplate, the valid cases.
        "/{*}/foo",
        "/{*}/foo/",
        "/foo/{**}/bar",
        "/foo/bar/{**}",
        # TestCheckValidPathTemplate: several {*} before one {**}.
        "/{*}/{*}/foo/{**}/bar",
        # Plain string matches (string_test.go).
        "/exact",
        "/prefix/*",
        "*/suffix",
        "*",
    ],
)
def test_patterns_istio_accepts_have_no_problem(pattern):
    assert path_pattern_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        # TestCheckValidPathTemplate, the invalid cases.
        ("/foo/{**}buzz/bar", "segment '{**}buzz'"),
        ("/{*}/foo/{}/bar", "segment '{}'"),
        ("/foo/{*}/bar/*", "segment '*'"),
        ("/foo/{*}/bar/**/buzz", "segment '**'"),
        ("/foo/{buzz}/bar", "outside the {*} and {**} operators"),
        ("/{buzz}", "outside the {*} and {**} operators"),
        ("/foo/{buzz}/bar/{**}", "segment '{buzz}'"),
        ("/foo/{buzz=*}/bar/{**}", "segment '{buzz=*}'"),
        ("/{*}/foo/{buzz=**}/bar", "segment '{buzz=**}'"),
        ("/{*}/foo/{**}bar", "segment '{**}bar'"),
        ("/{*}/foo/{*}.txt", "segment '{*}.txt'"),
        ("/{*}/foo/{temp", "segment '{temp'"),
        ("/{*}/foo/temp}/bar", "segment 'temp}'"),
        ("/{*}/foo/temp}/*", "segment 'temp}'"),
        ("/{**}/foo/temp/{*}/bar", "after {**}"),
        ("/{**}/{**}", "after {**}"),
        ("/{**}/foo/temp/{**}/bar", "after {**}"),
        ("/{*}/foo/?abc", "segment '?abc'"),
        # CheckEmptyValues.
        ("", "empty"),
        # Accepted by Istio, but not what they say.
        ("/api/*/items", "compares literally"),
        ("*/api/*", "compares literally"),
        ("api/v1", "start with /"),
        ("foo/{*}", "must start with /"),
    ],
)
def test_patterns_istio_rejects_or_matches_literally_name_the_reason(pattern, reason):
    problem = path_pattern_problem(pattern)
    assert problem is not None and reason in problem, problem


def test_star_inside_a_plain_path_is_compared_literally():
    assert path_matches("/api/*/items", "/api/v1/items") is False
    assert path_matches("/api/*/items", "/api/*/items") is True
