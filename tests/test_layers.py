"""The layers depend one way: the analysis on nothing of the project, the component library on the
analysis's matching only, the program's config on the library, the tools on all of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .support import ROOT

PACKAGES = ("analysis", "components", "stack", "tools", "tests")
# What each layer may import from the project; everything else it imports is a library.
ALLOWED = {
    "analysis": {"analysis"},
    "components": {"components", "analysis"},
    "stack": {"stack", "components", "analysis"},
    "tools": {"tools", "stack", "components", "analysis"},
}


def project_imports(path: Path) -> set[str]:
    """The project's top-level packages a module imports, relative imports resolved to its own."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(path.relative_to(ROOT).parts[0] if node.level else (node.module or "").split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(layer):
    offending = {
        str(path.relative_to(ROOT)): sorted(project_imports(path) - ALLOWED[layer])
        for path in sorted((ROOT / layer).rglob("*.py"))
        if project_imports(path) - ALLOWED[layer]
    }
    assert offending == {}


def test_the_component_library_never_imports_the_programs_config():
    library = sorted((ROOT / "components").rglob("*.py"))
    assert library and not any("stack" in project_imports(path) for path in library)


def test_the_checker_sees_every_form_of_import(tmp_path):
    module = tmp_path / "probe.py"
    module.write_text("import tools.plan\nfrom stack import StackConfig\nfrom pulumi import Output\n")
    assert project_imports(module) == {"stack", "tools"}


def test_main_only_wires_config_to_components():
    assert project_imports(ROOT / "__main__.py") <= {"stack"}
