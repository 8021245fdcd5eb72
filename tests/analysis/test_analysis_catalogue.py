"""The finding catalogue is the one source of codes, severities and meanings: the analysis page's findings
table must say exactly what it says, and every finding carries its code's severity and resource."""

from __future__ import annotations

from pathlib import Path

from analysis import Code, analyze

ANALYSIS_DOC = Path(__file__).resolve().parents[2] / "docs" / "analysis.md"
TABLE_HEADER = "| code | severity | resource | finding | what it means |"


def documented_findings_table() -> list[str]:
    lines = ANALYSIS_DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(TABLE_HEADER) + 2  # past the header and the separator row
    end = next(index for index in range(start, len(lines)) if not lines[index].startswith("|"))
    return lines[start:end]


def test_the_documented_findings_table_lists_the_catalogue_row_for_row():
    expected = [f"| {c} | {c.severity} | {c.resource_kind} | {c.headline} | {c.description} |" for c in Code]
    assert documented_findings_table() == expected


def test_each_finding_takes_severity_and_resource_kind_from_its_code(k8s):
    unbound = k8s.service_entry("postgres-3", waypoint=None)
    egress_outside_the_mesh = k8s.namespace("istio-egress", ambient=False)
    manifests = [*k8s.seed(protected=False), unbound, k8s.grant("postgres-1", "db"), egress_outside_the_mesh]
    findings = analyze(manifests)
    assert {finding.code for finding in findings} >= {Code.SERVICE_ENTRY_NOT_BOUND, Code.RAW_IP_BYPASS}
    for finding in findings:
        assert finding.severity is finding.code.severity
        assert finding.resource.split(" ")[0] == finding.code.resource_kind, finding

