"""The Istio release the analysis judges for: reading a version, comparing it with the release a
behaviour arrived in, and the analysis page's table of release-dependent behaviours.

Release tags checked in istio/istio: GatewayClass targets and serviceAccounts appear at 1.25.0
(pilot/pkg/model/policyattachment.go, pilot/pkg/security/authz/model/model.go), trustDomains at 1.30.2
(model.go; absent at 1.30.1); release notes 57656.yaml (resolution NONE, 1.28) and 59797.yaml (CIDR
addresses, 1.30).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analysis import IstioVersion, IstioVersionError
from analysis.istio import NEWEST_SUPPORTED, Behaviour, Istio

ANALYSIS_DOC = Path(__file__).resolve().parents[2] / "docs" / "analysis.md"
TABLE_HEADER = "| from | behaviour | upstream |"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("1.28", IstioVersion(28)),
        ("1.28.2", IstioVersion(28, 2)),
        ("v1.30.0", IstioVersion(30, 0)),
        (" 1.24 ", IstioVersion(24)),
    ],
)
def test_version_reads_minor_and_optional_patch(text, parsed):
    assert IstioVersion.parse(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1", "must look like 1.28 or 1.28.2 (got '1')"),
        ("1.28-rc.0", "must look like 1.28 or 1.28.2"),
        ("latest", "must look like 1.28 or 1.28.2"),
        ("1.23.9", "the analysis knows Istio 1.24 to 1.31 (got 1.23.9)"),
        ("1.32", "the analysis knows Istio 1.24 to 1.31 (got 1.32)"),
        ("2.0", "the analysis knows Istio 1.24 to 1.31 (got 2.0)"),
    ],
)
def test_version_errors_say_what_is_expected(text, message):
    with pytest.raises(IstioVersionError, match=re.escape(message)):
        IstioVersion.parse(text)


@pytest.mark.parametrize(
    ("version", "since", "expected"),
    [
        ("1.30.1", "1.30.2", False),
        ("1.30.2", "1.30.2", True),
        ("1.30", "1.30.2", True),  # a minor without a patch is its newest patch release
        ("1.29", "1.30.0", False),
        ("1.31.0", "1.30.2", True),
    ],
)
def test_a_release_has_what_arrived_at_or_before_it(version, since, expected):
    assert IstioVersion.parse(version).at_least(IstioVersion.parse(since)) is expected


def test_default_is_the_newest_generally_available_release_and_has_every_behaviour():
    assert str(NEWEST_SUPPORTED) == "1.30"
    assert all(Istio().has(behaviour) for behaviour in Behaviour)
    assert not any(Istio.of("1.24").has(behaviour) for behaviour in Behaviour)


def test_the_analysis_page_lists_every_release_dependent_behaviour():
    lines = ANALYSIS_DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(TABLE_HEADER) + 2
    end = next(index for index in range(start, len(lines)) if not lines[index].startswith("|"))
    expected = [f"| {b.since} | {b.description} | {b.evidence} |" for b in Behaviour]
    assert lines[start:end] == expected
