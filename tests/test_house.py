"""The house plan, checked: no import cycles, no borrowed private names, small documented modules.

Read from the source with ``ast`` (nothing is imported), so a failure names the file and line.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("feedback", "jobs")
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    mods = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(encoding="utf-8"), str(path)) for name, path in MODULES.items()}


def _area(module: str) -> str:
    """``feedback.tickets.service`` → ``feedback.tickets``; top-level modules are their own area."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _imports(name: str):
    """(imported module, imported name or None, line) for every import in a module, at any depth."""
    is_package = MODULES[name].name == "__init__.py"
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")[: (None if is_package else -1)]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield (full if full in MODULES else base), alias.name, node.lineno


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name in MODULES:
        for target, _, _ in _imports(name):
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(MODULES):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycle_between_modules_even_through_late_imports():
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles (each list imports itself round): " + "; ".join(" → ".join(c) for c in cycles)


def test_no_area_imports_a_private_name_of_another_area():
    offences = [f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}.{what}"
                for name in MODULES for target, what, line in _imports(name)
                if what and what.startswith("_") and not what.startswith("__")
                and target.startswith(PACKAGES) and _area(target) != _area(name)]
    assert offences == [], "\n".join(offences)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_is_at_most_500_lines(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)} has {lines} lines (at most {MAX_LINES})"


def _public_functions(tree: ast.Module):
    """Module-level functions and methods of module-level classes whose names do not start with _."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and not item.name.startswith("_"):
                    yield f"{node.name}.{item.name}", item


def test_every_public_function_has_a_docstring():
    missing = [f"{MODULES[name].relative_to(ROOT)}:{node.lineno} {qualname}"
               for name, tree in TREES.items() for qualname, node in _public_functions(tree)
               if not qualname.split(".")[-1].startswith("_") and ast.get_docstring(node) is None]
    assert missing == [], "public functions without a docstring:\n" + "\n".join(missing)


def test_every_module_has_a_docstring():
    missing = [str(MODULES[name].relative_to(ROOT)) for name, tree in TREES.items()
               if ast.get_docstring(tree) is None and MODULES[name].read_text(encoding="utf-8").strip()]
    assert missing == [], "modules without a docstring: " + ", ".join(missing)


def test_imports_inside_functions_say_why():
    """Imports belong at the top of a module; a late one (a real cycle, a start-up cost) has a
    comment on its line or just above its group of imports."""
    offences = []
    for name, tree in TREES.items():
        lines = MODULES[name].read_text(encoding="utf-8").splitlines()
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                line = node.lineno
                while line > 1 and lines[line - 2].strip().startswith(("import ", "from ")):
                    line -= 1  # the first import of this group
                group_comment = "#" in lines[line - 1] or (line > 1 and lines[line - 2].strip().startswith("#"))
                if "#" not in lines[node.lineno - 1] and not group_comment:
                    offences.append(f"{MODULES[name].relative_to(ROOT)}:{node.lineno} {lines[node.lineno - 1].strip()}")
    assert offences == [], "late imports without a reason:\n" + "\n".join(sorted(set(offences)))
