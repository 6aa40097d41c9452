"""The package layers, enforced: each package of ``factory/`` imports only the packages below it.

Every import in ``factory/`` is read from the source (module level, function level and
``TYPE_CHECKING`` blocks alike). The packages, lowest first, draw the pipeline:

    core → locks → index → tools → bases → sdist → wheelhouse → images → release → top (cli, pipeline, report, gonogo, reportpage)

A module may import modules of its own package or of a lower one; there must be no import
cycle between modules; only ``factory.core.engine`` imports the Docker SDK or
testcontainers. A new package must be given a place in ``PACKAGES`` here (and in the
README's "Layout" section, which draws the same order), and each package's ``__init__.py``
says its job, its entry points and what it may import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from paths import ROOT

PACKAGE = ROOT / "factory"

# Lowest first. "" is the top: the modules directly under factory/.
PACKAGES = ["core", "locks", "index", "tools", "bases", "sdist", "wheelhouse", "images", "release", ""]
RANK = {name: i for i, name in enumerate(PACKAGES)}
ENGINE_MODULE = "core.engine"
ENGINE_PACKAGES = ("docker", "testcontainers")
MAX_TOP_MODULES = 12


def _modules() -> dict[str, Path]:
    """Dotted module name under ``factory`` (``sdist.build``, ``cli``, ``sdist`` for a package's
    ``__init__``) -> path. ``factory/resources/`` holds data (programs run inside containers)."""
    found = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE).with_suffix("").parts
        if parts[0] == "resources" and len(parts) > 1:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts) or "__init__"] = p
    return found


def _package_of(module: str) -> str:
    head = module.split(".")[0]
    return head if head in RANK else ""


def _imports(path: Path, module: str) -> list[tuple[str, int]]:
    """(imported name, line) for every import in ``path``: relative ones resolved to a dotted
    name inside ``factory`` (``factory.core.errors``), absolute ones kept as written."""
    is_init = path.name == "__init__.py"
    here = module.split(".") if module != "__init__" else []
    base = here if is_init else here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                stem = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                prefix = ".".join(["factory", *stem, *([node.module] if node.module else [])])
                found.append((prefix, node.lineno))
                found += [(f"{prefix}.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((node.module or "", node.lineno))
                if node.module and node.module.startswith("factory"):
                    found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _graph() -> dict[str, set[tuple[str, int]]]:
    """module -> {(imported factory module, line)}: each import resolved to the longest
    module name it names (``from ..core import atomic`` -> ``core.atomic``)."""
    modules = _modules()
    graph: dict[str, set[tuple[str, int]]] = {m: set() for m in modules}
    for module, path in modules.items():
        for name, line in _imports(path, module):
            if not name.startswith("factory."):
                continue
            target = name.removeprefix("factory.")
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != module:
                graph[module].add((target, line))
    return graph


def test_every_package_has_a_place():
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages - {"resources"} <= set(RANK), f"give these packages a place in tests/unit/test_layers.py PACKAGES: {sorted(packages - set(RANK))}"


def test_the_top_stays_small():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, f"{len(top)} modules directly under factory/: move some into a package: {top}"


@pytest.mark.parametrize("package", [p for p in PACKAGES if p])
def test_every_package_says_its_job_and_what_it_may_import(package):
    init = PACKAGE / package / "__init__.py"
    assert init.is_file(), f"factory/{package}/ has no __init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    assert "Job:" in doc and "May import:" in doc, f"factory/{package}/__init__.py: its docstring must give 'Job:' and 'May import:'"
    allowed = {p or "top" for p in PACKAGES[: RANK[package] + 1]}
    named = set(doc.split("May import:")[1].replace("``", " ").replace(",", " ").replace(".", " ").split())
    assert named & (set(PACKAGES) - allowed - {""}) == set(), f"factory/{package}/__init__.py names a higher package under 'May import:'"


def test_no_import_points_upward():
    upward = []
    for module, edges in _graph().items():
        for target, line in edges:
            mine, theirs = _package_of(module), _package_of(target)
            if RANK[theirs] > RANK[mine]:
                upward.append(f"factory/{module.replace('.', '/')}.py:{line} ({mine or 'top'}) imports {target} ({theirs or 'top'}, higher)")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycle():
    graph = {m: {t for t, _ in edges} for m, edges in _graph().items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> None:
        state[v] = 1
        stack.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                cycles.append([*stack[stack.index(w) :], w])
            elif w not in state:
                visit(w)
        stack.pop()
        state[v] = 2

    for v in sorted(graph):
        if v not in state:
            visit(v)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_only_the_engine_module_imports_the_docker_sdk():
    users = sorted(
        f"factory/{module.replace('.', '/')}.py:{line} imports {name}"
        for module, path in _modules().items()
        for name, line in _imports(path, module)
        if name.split(".")[0] in ENGINE_PACKAGES and module != ENGINE_MODULE
    )
    assert not users, "\n".join(users)


@pytest.mark.parametrize(
    "module, source, expected",
    [
        ("sdist.build", "from ..core.engine import Engine", "core.engine"),
        ("sdist.build", "from . import cibw", "sdist.cibw"),
        ("sdist.build", "from ..core import atomic", "core.atomic"),
        ("cli", "from .images import smoke", "images.smoke"),
        ("cli", "from factory.images.smoke import smoke", "images.smoke"),
        ("images.assemble", "if TYPE_CHECKING:\n    from ..sdist.build import X", "sdist.build"),
        ("images.assemble", "def f():\n    from ..release.signing import g", "release.signing"),
    ],
)
def test_the_walker_sees_every_kind_of_import(tmp_path, monkeypatch, module, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source + "\n")
    modules = _modules()
    monkeypatch.setattr(sys.modules[__name__], "_modules", lambda: {**modules, module: path})
    assert expected in {t for t, _ in _graph()[module]}


def test_an_upward_import_is_seen(tmp_path, monkeypatch):
    path = tmp_path / "m.py"
    path.write_text("from ..images.smoke import smoke\n")
    modules = _modules()
    monkeypatch.setattr(sys.modules[__name__], "_modules", lambda: {**modules, "core.newmodule": path})
    with pytest.raises(AssertionError, match="core/newmodule.py:1 .core. imports images.smoke"):
        test_no_import_points_upward()
