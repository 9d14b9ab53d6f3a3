"""The project's import graph, read from the code: `python docs/module_graph.py` rewrites docs/module-graph.md
(a Mermaid diagram of the packages and what each imports), and tests/test_architecture.py fails on an import
cycle, a wrong-way import or a picture that no longer matches the code.

Imports are read with `ast`, at any depth (an import inside a function is still a dependency), except those
under `if TYPE_CHECKING:`, which Python never runs.
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PICTURE = ROOT / "docs" / "module-graph.md"
SKIPPED = {"tests", "bench", "docs", ".venv", "var"}
# Layers, lowest first: a part may import only parts of lower layers (and itself). The entry points sit on top.
LAYERS = [
    {"config"},
    {"warehouse"},
    {"collectors"},
    {"reports"},
    {"simulators", "alerts"},
    {"api", "dashboard"},
    {"pages"},
    {"scheduler", "run", "app"},
]


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every project module by dotted name (tests, benchmarks and docs are not part of the product)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in SKIPPED or relative.parts[0].startswith("."):
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """The project modules `module` imports."""
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:      # relative import
                package = module.split(".")
                package = package[: len(package) - node.level + (path.name == "__init__.py")]
                base = ".".join([*package, base] if base else package)
            # `from package import module` depends on the module; `from module import name` on the module.
            for alias in node.names:
                names.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in names if name in known and name != module}


def module_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = project_modules(root)
    return {name: imports_of(path, name, set(modules)) for name, path in modules.items()}


def part(module: str) -> str:
    return module.split(".")[0]


def part_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    parts: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        parts[part(module)]
        for target in targets:
            if part(target) != part(module):
                parts[part(module)].add(part(target))
    return dict(parts)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def connect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(found)


def layer_of(name: str) -> int:
    for level, members in enumerate(LAYERS):
        if name in members:
            return level
    raise KeyError(f"{name} is in no layer of docs/module_graph.py LAYERS: add it there")


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a part to a part of the same or a higher layer (other than itself), as 'a -> b' lines."""
    return sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                  if part(target) != part(module) and layer_of(part(target)) >= layer_of(part(module)))


def mermaid(graph: dict[str, set[str]]) -> str:
    parts = part_graph(graph)
    counts = defaultdict(int)
    for module in graph:
        counts[part(module)] += 1
    lines = ["```mermaid", "flowchart BT"]
    for level, members in enumerate(LAYERS):
        present = sorted(m for m in members if m in parts)
        if present:
            lines.append(f"  subgraph layer{level} [\"layer {level}\"]")
            lines += [f"    {m}[\"{m} ({counts[m]} module{'s' if counts[m] > 1 else ''})\"]" for m in present]
            lines.append("  end")
    lines += [f"  {source} --> {target}" for source in sorted(parts) for target in sorted(parts[source])]
    lines.append("```")
    return "\n".join(lines)


def picture(graph: dict[str, set[str]]) -> str:
    return f"""# Module graph

Generated by `python docs/module_graph.py` from the code's imports (tests/test_architecture.py fails when it is
out of date). An arrow is "imports"; every arrow points down a layer, and no part imports itself back
through another. `config` knows nothing of the others; `warehouse/` owns storage and every SQL statement and
imports only `config`; each collector declares its source (`collectors/base.py: Source`) and
`collectors/__init__.py` is the one registry; the processes sit on top.

{mermaid(graph)}

Modules and their project imports:

{chr(10).join(f"- `{module}`: {', '.join(f'`{t}`' for t in sorted(graph[module])) or '(none)'}" for module in sorted(graph))}
"""


if __name__ == "__main__":
    PICTURE.write_text(picture(module_graph()))
    print(f"wrote {PICTURE.relative_to(ROOT)}")
