from __future__ import annotations

import re

from analysis import AccessMatrix, Decision, Verdict, access_matrix, analyze, render_findings, render_mermaid, render_table

# Table columns are two spaces or more apart; a header may hold single spaces.
COLUMNS = re.compile(r"\s{2,}")

EDGE = re.compile(
    r"^  (?P<client>\w+) (?P<arrow>-- (?:ALLOW|LIMITED) -->|-\. (?:DENY|UNDECIDED) \.->|== (?:OPEN|BYPASS) ==>) "
    r"(?P<destination>\w+)$"
)


def test_mermaid_starts_with_a_left_to_right_flowchart(k8s):
    assert render_mermaid(access_matrix(k8s.seed())).splitlines()[0] == "flowchart LR"


def test_mermaid_draws_one_edge_per_cell_labelled_with_its_verdict(k8s):
    matrix = access_matrix(k8s.seed(), clients=["db", "rds-demo-1", "rds-demo-2"])
    edges = [edge for edge in map(EDGE.match, render_mermaid(matrix).splitlines()) if edge]
    # One more column: any other external destination.
    assert len(edges) == len(matrix.clients) * (len(matrix.destinations) + 1)
    arrows = {(edge["client"], edge["destination"]): edge["arrow"] for edge in edges}
    assert arrows[("ns_rds_demo_1", "se_istio_egress_postgres_1")] == "-- ALLOW -->"
    assert arrows[("ns_rds_demo_1", "se_istio_egress_postgres_2")] == "-. DENY .->"
    assert arrows[("ns_db", "se_istio_egress_postgres_1")] == "== OPEN ==>"


def test_mermaid_node_ids_are_sanitised_and_distinct():
    closed = Verdict(Decision.DENY, "locked down")
    matrix = AccessMatrix(("a-b", "a.b"), (), (), {"a-b": closed, "a.b": closed})
    lines = render_mermaid(matrix).splitlines()
    assert lines[1:3] == ['  ns_a_b["a-b"]', '  ns_a_b_2["a.b"]']


def test_table_has_a_header_row_and_one_row_per_client_with_any_other_external_destination_last(k8s):
    lines = render_table(access_matrix(k8s.seed())).splitlines()
    assert COLUMNS.split(lines[0]) == ["client", "istio-egress/postgres-1", "istio-egress/postgres-2", "any other external"]
    assert COLUMNS.split(lines[1]) == ["rds-demo-1", "ALLOW", "DENY", "OPEN"]
    assert COLUMNS.split(lines[2]) == ["rds-demo-2", "DENY", "ALLOW", "OPEN"]


def test_table_explains_any_other_external_destination_after_each_rows_cells(k8s):
    lines = render_table(access_matrix([*k8s.seed(), k8s.network_policy("deny-all", "rds-demo-1", egress=[])])).splitlines()
    reasons = [line for line in lines if line.startswith("rds-demo-1 -> ")]
    assert reasons[-1] == (
        "rds-demo-1 -> any other external: DENY (egress NetworkPolicies (rds-demo-1/deny-all) let pods send only to "
        "nowhere (every egress connection is denied))"
    )


def test_mermaid_draws_an_edge_from_each_client_to_any_other_external_destination_after_the_cells(k8s):
    manifests = [*k8s.seed(), k8s.network_policy("deny-all", "rds-demo-1", egress=[])]
    lines = render_mermaid(access_matrix(manifests)).splitlines()
    assert '  other_external{{"any other external"}}' in lines
    edges = [line for line in lines if line.endswith(" other_external")]
    assert edges == ["  ns_rds_demo_1 -. DENY .-> other_external", "  ns_rds_demo_2 == OPEN ==> other_external"]
    # Edges 0-3 are the cells; the DENY one to any other external destination is edge 4.
    assert "  linkStyle 1,2,4 stroke:#8c959f" in lines


def test_table_explains_every_cell(k8s):
    text = render_table(access_matrix(k8s.seed()))
    expected = "rds-demo-1 -> istio-egress/postgres-1: ALLOW (allowed by istio-egress/allow-postgres-1-from-rds-demo-1)"
    assert expected in text.splitlines()


def test_findings_render_one_per_line(k8s):
    manifests = [*k8s.seed(), k8s.service_entry("postgres-3", waypoint=None)]
    lines = render_findings(analyze(manifests)).splitlines()
    assert [line.split()[1] for line in lines] == ["[EGW0201]", "[EGW0203]"]


def test_mermaid_draws_bypass_as_its_own_thick_arrow_and_colour(k8s):
    lines = render_mermaid(access_matrix(k8s.seed(protected=False))).splitlines()
    assert "  ns_rds_demo_1 == BYPASS ==> se_istio_egress_postgres_2" in lines
    assert "  linkStyle 1,2 stroke:#8250df" in lines


def test_table_shows_bypass_cells_and_the_routes_behind_them(k8s):
    lines = render_table(access_matrix(k8s.seed(protected=False))).splitlines()
    assert COLUMNS.split(lines[1]) == ["rds-demo-1", "ALLOW", "BYPASS", "OPEN"]
    assert any(
        line.startswith("rds-demo-1 -> istio-egress/postgres-2: BYPASS (")
        and line.endswith("reachable around the waypoint via raw IP 10.0.0.2, in-cluster db/postgres-2)")
        for line in lines
    )


def test_mermaid_draws_limited_and_undecided_cells_in_their_own_colours(k8s):
    api = k8s.service_entry("api", ports=((8080, "HTTP"),))
    get_only = k8s.policy("get-only", "api", rules=[k8s.rule({"namespaces": ["rds-demo-1"]}, {"methods": ["GET"]})])
    by_ip = k8s.policy("by-ip", "api", rules=[k8s.rule({"namespaces": ["rds-demo-2"], "ipBlocks": ["10.0.0.0/8"]})])
    lines = render_mermaid(access_matrix([*k8s.seed(), api, get_only, by_ip])).splitlines()
    edges = [edge.groupdict() for edge in map(EDGE.match, lines) if edge]
    assert {"client": "ns_rds_demo_1", "arrow": "-- LIMITED -->", "destination": "se_istio_egress_api"} in edges
    assert {"client": "ns_rds_demo_2", "arrow": "-. UNDECIDED .->", "destination": "se_istio_egress_api"} in edges
    assert "  linkStyle 0 stroke:#bf8700" in lines
    assert "  linkStyle 3 stroke:#0969da" in lines
