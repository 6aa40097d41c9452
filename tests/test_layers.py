"""The package's layers, enforced: domain ← infrastructure ← stages (in pipeline order) ← pipeline/CLI.

Every import in ``factory/`` is read from the source (module level, function level and
``TYPE_CHECKING`` blocks alike). A module may import modules of its own layer or an earlier
one, and a stage only stages that run before it; there must be no cycle; only
``factory.engine`` imports the Docker SDK or testcontainers. A new module must be given a
layer here (the README's "Layout" section draws the same table).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "factory"

# Layers in order; a layer is a list of groups, in order too (stages run in this order).
# A module may import any module of an earlier group, or of its own group (no cycle).
DOMAIN = [
    {
        "errors", "targets", "locktypes", "reqlock", "pylockfile", "lockfile", "selection", "sdist", "verify",
        "textfile", "manifest", "readiness", "wheelsbom", "imagelock", "buildoutcome", "oci", "provenance", "debpackages", "matrix", "librecipes",
    }
]
INFRASTRUCTURE = [
    {
        "resources", "atomic", "cache", "children", "faults", "progress", "index", "engine",
        "registry", "reproducible", "binfmt", "config", "toolchain", "probes", "debs", "cosign", "parallel", "remotecache", "layerimage",
    }
]
STAGES = [
    {"lock"},
    {"rootfs"},
    {"bootstrap"},
    {"builders"},
    {"failures", "sdistplan", "buildcache", "cibw", "purebuild", "buildchecks", "stableabi", "builddeps", "buildlocks", "libbuild", "rustbuild", "build"},  # the sdist lane
    {"wheelhouse"},
    {"sbom"},
    {"perf"},
    {"hostlayer", "images"},
    {"smoke"},
    {"report"},
    {"release", "signing", "publish"},
]
TOP = [{"pipeline"}, {"cli"}, {"__main__", "__init__"}]
ORDER = [(layer, group) for layer, groups in (("domain", DOMAIN), ("infrastructure", INFRASTRUCTURE), ("stages", STAGES), ("pipeline/CLI", TOP)) for group in groups]
RANK = {module: (i, layer) for i, (layer, group) in enumerate(ORDER) for module in group}
ENGINE_PACKAGES = ("docker", "testcontainers")


def _modules() -> dict[str, Path]:
    # factory/resources/ holds data (programs run inside containers), not modules of the package
    return {
        ".".join(p.relative_to(PACKAGE).with_suffix("").parts): p
        for p in PACKAGE.rglob("*.py")
        if "resources" not in p.relative_to(PACKAGE).parts[:-1]
    }


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported module or package, line) for every import in ``path``, relative ones resolved
    to a name inside ``factory`` (first component) and absolute ones kept as written."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.module:
                    found.append(("factory." + node.module, node.lineno))
                else:  # from . import a, b
                    found += [("factory." + alias.name, node.lineno) for alias in node.names]
            else:
                found.append((node.module or "", node.lineno))
                if node.module == "factory":
                    found += [("factory." + alias.name, node.lineno) for alias in node.names]
    return found


def _graph() -> dict[str, set[tuple[str, int]]]:
    modules = _modules()
    graph: dict[str, set[tuple[str, int]]] = {m: set() for m in modules}
    for module, path in modules.items():
        for name, line in _imports(path):
            if name.startswith("factory."):
                target = name.split(".")[1]
                if target in modules and target != module:
                    graph[module].add((target, line))
    return graph


def test_every_module_has_a_layer():
    unassigned = sorted(set(_modules()) - set(RANK))
    assert not unassigned, f"give these modules a layer in tests/test_layers.py (and the README's Layout): {unassigned}"


def test_no_backward_edge():
    backward = []
    for module, edges in _graph().items():
        for target, line in edges:
            if module in RANK and target in RANK and RANK[target][0] > RANK[module][0]:
                backward.append(f"factory/{module}.py:{line} ({RANK[module][1]}) imports {target} ({RANK[target][1]}, later)")
    assert not backward, "\n".join(sorted(backward))


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
                cycles.append([*stack[stack.index(w):], w])
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
        f"factory/{module}.py:{line} imports {name}"
        for module, path in _modules().items()
        for name, line in _imports(path)
        if name.split(".")[0] in ENGINE_PACKAGES and module != "engine"
    )
    assert not users, "\n".join(users)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from .engine import Engine", "factory.engine"),
        ("from . import images", "factory.images"),
        ("from factory import smoke", "factory.smoke"),
        ("if TYPE_CHECKING:\n    from .build import X", "factory.build"),
        ("def f():\n    from .report import g", "factory.report"),
    ],
)
def test_the_walker_sees_every_kind_of_import(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source + "\n")
    assert expected in [name for name, _ in _imports(path)]
