"""The dependency rule of ARCHITECTURE.md, checked on every import of the product's packages.

config <- collectors -> (Sample) -> detectors -> (Event) -> alerts, contingency <- vigil:
each package imports only the packages listed for it below, and alerts/ and contingency/ never
import each other (only the app shell, vigil/, wires them together).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"config", "collectors", "detectors", "alerts", "contingency", "vigil"}
ALLOWED = {
    "config": set(),
    "collectors": {"config"},
    "detectors": {"config", "collectors"},
    "alerts": {"config", "detectors"},
    "contingency": {"config", "detectors"},
    "vigil": OURS - {"vigil"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_architecture_allows(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, package
    wrong = {
        f"{path.relative_to(ROOT)} imports {other}"
        for path in files
        for other in imports_of(path) - ALLOWED[package] - {package}
    }
    assert not wrong, sorted(wrong)


def test_the_checker_sees_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import alerts.route\nfrom contingency import plan\nfrom . import x\nimport numpy\n")
    assert imports_of(probe) == {"alerts", "contingency"}
