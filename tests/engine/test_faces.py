"""The layers, beyond what import-linter sees: every area's face resolves, and pages use only faces.

import-linter (`make lint`) checks engine never imports streamlit/ui and has no sibling cycles; pages/ is not a
package (its files start with digits), so the rule "pages import engine only through package faces" is checked here.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AREAS = sorted(p.name for p in (ROOT / "engine").iterdir() if (p / "__init__.py").is_file() and p.name != "commands")


@pytest.mark.parametrize("area", AREAS)
def test_face_names_resolve(area):
    face = importlib.import_module(f"engine.{area}")
    assert face.__all__, f"engine.{area} has no public face (__all__)"
    missing = [name for name in face.__all__ if not hasattr(face, name)]
    assert not missing, f"engine.{area}.__all__ names what it does not have: {missing}"


def _engine_imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "engine":
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "engine":
                    yield node.lineno, alias.name


@pytest.mark.parametrize("path", [*sorted((ROOT / "pages").glob("*.py")), ROOT / "app.py"], ids=lambda p: p.name)
def test_pages_import_engine_only_through_faces(path):
    deep = [f"{path.name}:{line} {module}" for line, module in _engine_imports(path) if module.count(".") != 1]
    assert not deep, "import the area's face (engine.<area>) instead of its modules:\n" + "\n".join(deep)


def test_engine_top_level_is_areas_only():
    loose = sorted(p.name for p in (ROOT / "engine").glob("*.py"))
    assert loose == ["__init__.py", "__main__.py"], f"put modules in an area package: {loose}"


def test_ui_never_imports_pages():
    for path in sorted((ROOT / "ui").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            assert not any(n.split(".")[0] == "pages" for n in names), f"{path.name}:{node.lineno} imports pages"


@pytest.mark.parametrize("area", AREAS)
def test_no_lazy_name_is_hidden_by_a_submodule(area):
    """Importing engine.<area>.<name> sets the package attribute <name> to the module, so a lazily exported
    function with its module's name would become the module: such names must be bound eagerly in the face."""
    face = importlib.import_module(f"engine.{area}")
    package_dir = ROOT / "engine" / area
    submodules = {p.stem for p in package_dir.glob("*.py")} | {p.name for p in package_dir.iterdir() if p.is_dir()}
    hidden = sorted(set(getattr(face, "_LAZY", {})) & submodules)
    assert not hidden, f"bind these eagerly in engine/{area}/__init__.py: {hidden}"
