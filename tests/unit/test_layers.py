"""The house's plan, kept by a test: which package may import which at run time.

    cli ──► service ──► runs ──► backends, store, sources, report, logging ──► core
                        config ──► backends

``core`` is pure: it imports no other package of ours and no I/O library (only the
standard library, pyarrow and numpy). Imports under ``if TYPE_CHECKING:`` are for
annotations and do not count.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2] / "reconciler"

ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "backends": {"core"},
    "store": {"core"},
    "sources": {"core"},
    "report": {"core"},
    "logging": {"core"},
    "config": {"core", "backends"},
    "emulator": {"core", "backends", "sources"},
    "runs": {"core", "backends", "store", "sources", "report", "logging"},
    "service": {"core", "config", "logging", "runs", "store", ""},
    "cli": {"core", "config", "logging", "runs", "store", "backends", "service", "emulator",
            ""},
}
CORE_THIRD_PARTY = {"pyarrow", "numpy"}


def runtime_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    annotations_only = {id(node) for block in ast.walk(tree)
                        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                        for statement in block.body for node in ast.walk(statement)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in annotations_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


MODULES = sorted(p for p in ROOT.rglob("*.py") if "vendor" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_each_module_imports_only_what_its_layer_may(path: Path) -> None:
    relative = path.relative_to(ROOT.parent).with_suffix("").parts
    layer = relative[1] if len(relative) > 2 else relative[1].removesuffix(".py")
    if layer in ("__init__", "__main__"):
        return
    ours = {package_of(m) for m in runtime_imports(path) if m.split(".")[0] == "reconciler"}
    assert ours - {layer} <= ALLOWED[layer], f"{path}: {sorted(ours - {layer})}"
    if layer == "core":
        outside = {m.split(".")[0] for m in runtime_imports(path)
                   if m.split(".")[0] != "reconciler"}
        assert outside - set(sys.stdlib_module_names) - {"__future__"} <= CORE_THIRD_PARTY, (
            f"{path}: {sorted(outside - set(sys.stdlib_module_names))}")


def test_the_map_names_every_package() -> None:
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in ROOT.glob("*.py")} - {"__init__", "__main__"}
    assert packages | modules == set(ALLOWED)
