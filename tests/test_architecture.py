"""The package's layout rules, read from its source with ``ast``: results never import widgets, no import
circles, modules stay small or say why not."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cnnvis_widgets"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every package module that ``name`` imports, at module level or inside functions.

    ``from .a import b`` counts as an import of ``.a`` and, where ``.a.b`` is a module, of that too; importing
    a submodule also runs its parent packages' ``__init__``, which counts as well.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            targets = [origin] + [f"{origin}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            while target:
                if target != name:
                    found.add(target)
                target = target.rpartition(".")[0]
    return found


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def test_the_graph_sees_relative_absolute_and_nested_imports():
    graph = import_graph()
    assert "cnnvis_widgets.model" in graph["cnnvis_widgets.deconv.projection"]         # from ..model import
    assert "cnnvis_widgets.deconv.rules" in graph["cnnvis_widgets.deconv.projection"]  # from .rules import
    assert "cnnvis_widgets.widgets.neuron_gallery" in graph["cnnvis_widgets.widgets"]  # from .x import in __init__
    assert "cnnvis_widgets.deconv" in graph["cnnvis_widgets.widgets.neuron_gallery"]   # the parent package runs


WIDGETS = "cnnvis_widgets.widgets"
TOP = {"cnnvis_widgets", "cnnvis_widgets.cli"}  # the package's front door and the command line sit above widgets


def widget_importers(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """Modules outside widgets/ (and below the top) that import from widgets/, with what they import."""
    def in_widgets(name: str) -> bool:
        return name == WIDGETS or name.startswith(WIDGETS + ".")

    found = {name: sorted(t for t in targets if in_widgets(t))
             for name, targets in graph.items() if name not in TOP and not in_widgets(name)}
    return {name: targets for name, targets in found.items() if targets}


def test_widget_importers_are_found_at_any_depth():
    planted = {"cnnvis_widgets.dissection.result": {"cnnvis_widgets.widgets.dissection_viewer"},
               "cnnvis_widgets.widgets.neuron_gallery": {"cnnvis_widgets.deconv"},
               "cnnvis_widgets.cli": {"cnnvis_widgets.widgets.export"}}
    assert widget_importers(planted) == {"cnnvis_widgets.dissection.result": ["cnnvis_widgets.widgets.dissection_viewer"]}


def test_nothing_outside_widgets_imports_widgets():
    """Results and engines never import widgets, not even inside a function."""
    assert widget_importers(import_graph()) == {}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, or with a self-loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_planted_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    """A package's ``__init__`` importing its own submodules is how packages work, not a circle; any other
    loop (submodule -> package -> other submodule -> ... -> submodule) is."""
    graph = import_graph()
    # a submodule's import of its own parent packages is implied by Python, not a dependency it chose
    graph = {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in graph.items()}
    assert cycles(graph) == []


def test_modules_stay_small_or_say_why():
    long = {}
    for name, path in package_modules().items():
        lines = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and "longer than" not in doc:
            long[name] = lines
    assert long == {}, f"modules over {MAX_LINES} lines whose docstring does not say why: {long}"


@pytest.mark.parametrize("name", sorted(package_modules()))
def test_every_module_has_a_docstring(name):
    assert ast.get_docstring(ast.parse(package_modules()[name].read_text())), f"{name} has no docstring"
