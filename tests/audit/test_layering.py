"""The audit app is the bottom layer: every app writes the trail, so it imports none of them."""

import ast
from pathlib import Path

import audit

PROJECT_APPS = {"mailadmin", "smtpconfig", "blacklist"}


def imported_top_level_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_audit_app_imports_no_higher_layer():
    modules = sorted(Path(audit.__file__).parent.rglob("*.py"))
    assert modules
    upward = {
        str(module): sorted(imported_top_level_packages(module) & PROJECT_APPS)
        for module in modules
    }
    assert {module: apps for module, apps in upward.items() if apps} == {}
