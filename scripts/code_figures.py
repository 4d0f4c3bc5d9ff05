"""Figures about the code's shape: import cycles, long functions, exceptions on built-ins, lines of code.

    .venv/bin/python scripts/code_figures.py

Prints one JSON object. Import cycles are counted between modules of the project's packages (grimp, the
graph import-linter uses); a function's length is from its `def` line to its last line.
"""

from __future__ import annotations

import ast
import builtins
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "pipelines", "gallery", "studio", "ui", "api")
LONG_FUNCTION = 80


def sources() -> list[Path]:
    files = [ROOT / "app.py"]
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def import_cycles() -> list[list[str]]:
    """Strongly connected groups of modules (size > 1) in the project's import graph."""
    import grimp

    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    return [sorted(c) for c in _components(edges) if len(c) > 1]


def _components(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(edges.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in edges:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                found.append(component)
    return found


def long_functions(files: list[Path]) -> list[str]:
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LONG_FUNCTION:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return found


def exceptions_on_builtins(files: list[Path]) -> list[str]:
    """Exception classes whose bases include a built-in exception type."""
    names = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                if bases & names:
                    found.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}({', '.join(sorted(bases))})"
                    )
    return found


def main() -> None:
    files = sources()
    cycles = import_cycles()
    long = long_functions(files)
    on_builtins = exceptions_on_builtins(files)
    tests = sorted((ROOT / "tests").rglob("*.py"))
    figures = {
        "import_cycles": len(cycles),
        "modules_in_cycles": sum(len(c) for c in cycles),
        "cycles": cycles,
        f"functions_over_{LONG_FUNCTION}_lines": len(long),
        "long_functions": long,
        "exception_classes_on_builtins": len(on_builtins),
        "exceptions": on_builtins,
        "source_lines": sum(len(p.read_text(encoding="utf-8").splitlines()) for p in files),
        "test_lines": sum(len(p.read_text(encoding="utf-8").splitlines()) for p in tests),
    }
    json.dump(figures, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
