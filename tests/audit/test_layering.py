"""The layering of the apps: core, audit ← blacklist ← smtpconfig ← mailadmin.

A lower layer never imports a higher one, so each can be understood (and tested) without
the ones built on it.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORDER = ["core", "audit", "blacklist", "smtpconfig", "mailadmin"]


def imported_top_level_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", ORDER[:-1])
def test_a_layer_imports_no_higher_layer(package):
    higher = set(ORDER[ORDER.index(package) + 1 :])
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules
    upward = {
        str(module.relative_to(ROOT)): sorted(imported_top_level_packages(module) & higher)
        for module in modules
    }
    assert {module: apps for module, apps in upward.items() if apps} == {}
