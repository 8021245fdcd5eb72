"""Seed 000, the workshop this project reproduces, as its text writes the manifests
(tests/analysis/seeds/000-workshop.yaml): its ALLOW/DENY table holds only for clients that dial the
nip.io name, and the documentation's example output is exactly what the analysis prints for it.

Upstream: ../shared/seeds/000_7dd4e97e81ddf5d7.txt (steps 1, 3, 4, 5; the ServiceEntries carry no
`addresses`, so a raw-IP connection to the database is not captured for the waypoint).
"""

from __future__ import annotations

import re
from pathlib import Path

from analysis import access_matrix, load_manifests
from analysis.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
WORKSHOP = Path(__file__).resolve().parent / "seeds" / "000-workshop.yaml"
COMMAND = "$ .venv/bin/python -m analysis workshop-manifests/"


def documented_output(page: Path) -> list[str]:
    """The lines of the page's text block that shows the workshop's analysis."""
    blocks = re.findall(r"```text\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL)
    [block] = [block for block in blocks if "(ServiceEntry istio-egress/postgres-1) Raw-IP" in block]
    return [line for line in block.splitlines() if line != COMMAND]


def printed(capsys) -> list[str]:
    capsys.readouterr()
    assert main([str(WORKSHOP)]) == 1  # an Error finding
    return capsys.readouterr().out.splitlines()


def test_the_workshops_grants_hold_by_name_but_each_database_is_reachable_from_both_by_raw_ip():
    cells = access_matrix(load_manifests(WORKSHOP)).to_dict()["cells"]
    assert cells == {"rds-demo-1": {"istio-egress/postgres-1": "ALLOW", "istio-egress/postgres-2": "BYPASS"},
                     "rds-demo-2": {"istio-egress/postgres-1": "BYPASS", "istio-egress/postgres-2": "ALLOW"}}


def test_the_analysis_page_shows_exactly_what_the_analysis_prints_for_the_workshop(capsys):
    assert documented_output(ROOT / "docs" / "analysis.md") == printed(capsys)


def test_the_readmes_excerpt_is_lines_of_that_output_in_order(capsys):
    excerpt = [line for line in documented_output(ROOT / "README.md") if line != "..."]
    output = printed(capsys)
    positions = [output.index(line) for line in excerpt]
    assert excerpt and positions == sorted(positions)
