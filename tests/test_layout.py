"""The packages' layout rules, read from the source: no import cycle, the layers' directions,
one spelling of each stored key, and formatting owned by ruff."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lenet", "search")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _imports(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports, at any depth of the file (lazy imports count), each
    with the packages above it, whose __init__ runs first."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names
            ]
        else:
            continue
        for name in names:
            parts = name.split(".")
            found |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)} & known
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, known) - {name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walk_sees_real_imports():
    graph = _graph()
    assert "search.records.keys" in graph["search.records.trial"]
    assert "search.views.plots" in graph["search.retrain.training"]  # a lazy import counts
    assert "search.cli.main" in graph["search.cli.__main__"]


def test_no_module_imports_one_that_imports_it_back():
    assert _cycles(_graph()) == []
    # The check finds a cycle where there is one.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    "layer, forbidden",
    [
        ("lenet", ("search",)),  # the engine knows nothing of the search
        ("search.records", ("search.run", "search.views", "search.cli", "search.study", "search.confirm")),
        ("search.run", ("search.views", "search.cli")),
        ("search.confirm", ("search.run", "search.views", "search.cli")),
        ("search.pruning", ("search.run", "search.views", "search.cli", "search.confirm")),
        ("search.sampling", ("search.run", "search.views", "search.cli", "search.confirm")),
        ("search.study", ("search.run", "search.views", "search.cli")),
        ("search.views", ("search.cli",)),
    ],
)
def test_layers_import_only_downwards(layer, forbidden):
    graph = _graph()
    offending = {
        (m, i)
        for m, imported in graph.items()
        if m == layer or m.startswith(layer + ".")
        for i in imported
        if any(i == f or i.startswith(f + ".") for f in forbidden)
    }
    assert offending == set()


def test_the_engine_imports_neither_optuna_nor_click():
    for path in (ROOT / "lenet").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("optuna", "optuna_dashboard", "click") for n in names), path


def test_every_stored_key_is_spelled_in_the_keys_module_only():
    from search.records import keys

    # Keys of one word ("seed", "target", "curve") are also ordinary names in every layer;
    # the records' round-trip tests check that what is stored is among the constants. Keys of
    # several words are distinctive: outside keys.py no string may spell one.
    spelled = {v for k, v in vars(keys).items() if k.isupper() and isinstance(v, str) and "_" in v}
    offenders = []
    for path in (ROOT / "search").rglob("*.py"):
        if path.name == "keys.py":
            continue
        tree = ast.parse(path.read_text())
        # A refusal names the request field it came from (subject=..., blame(...)): a field, not a key.
        subjects = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.keyword) and n.arg == "subject"}
        subjects |= {
            id(a)
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "blame"
            for a in n.args
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in spelled and id(node) not in subjects:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert offenders == []


RUFF = shutil.which("ruff") or (Path(sys.executable).parent / "ruff")


@pytest.mark.skipif(not Path(RUFF).exists(), reason="ruff is not installed (pip install -e '.[test]')")
@pytest.mark.parametrize("command", [["format", "--check"], ["check"]], ids=["format", "lint"])
def test_formatting_and_lint_are_ruffs(command):
    result = subprocess.run(
        [str(RUFF), *command, "lenet", "search", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
