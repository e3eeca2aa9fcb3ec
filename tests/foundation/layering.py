"""The import contracts of `trainer/`, `sandbox/` and `apps/`, checked by walking each module's AST.

Every `import` counts, also those inside functions: a lazy import hides a cycle from Python, not from
a reader. `python -m tests.foundation.layering` prints the violations of the checkout.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("trainer", "sandbox", "apps")
WEB_STACK = ("apps", "webrl_site", "django", "celery", "channels", "daphne", "kombu")

# (importer prefix, forbidden prefixes, why). A prefix matches the module and everything below it.
CONTRACTS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("trainer", WEB_STACK, "trainer is a pure-Python library"),
    ("sandbox", WEB_STACK, "the built-in world runs without the web app"),
    ("trainer.config", ("trainer.",), "the config schema stands alone"),
    ("trainer.prompts", ("trainer.",), "the prompt formats stand alone"),
    (
        "trainer.env",
        (
            "trainer.learn",
            "trainer.serve",
            "trainer.curriculum",
            "trainer.bench",
            "trainer.cli",
            "trainer.phase",
            "torch",
            "transformers",
        ),
        "the environment never imports the learning code",
    ),  # fmt: skip
    (
        "trainer.learn",
        (
            "trainer.env",
            "trainer.serve",
            "trainer.curriculum",
            "trainer.bench",
            "trainer.cli",
            "trainer.phase",
            "playwright",
        ),
        "the learning code never imports the browser",
    ),  # fmt: skip
    (
        "trainer.serve",
        (
            "trainer.env.pool",
            "trainer.env.episode",
            "trainer.env.observation",
            "trainer.curriculum",
            "trainer.bench",
            "trainer.cli",
            "trainer.phase",
            "playwright",
        ),
        "sampling needs the environment's types, never its browser",
    ),  # fmt: skip
    (
        "trainer.curriculum",
        (
            "trainer.env",
            "trainer.learn",
            "trainer.bench",
            "trainer.cli",
            "trainer.phase",
            "playwright",
        ),
        "the curriculum works on task configs and text models",
    ),  # fmt: skip
)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def read_sources(
    root: Path = ROOT, packages: Iterable[str] = PACKAGES
) -> dict[str, tuple[str, bool]]:
    """{module name: (source, is_package)} for every .py file of the packages (migrations skipped)."""
    out: dict[str, tuple[str, bool]] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            out[module_name(path, root)] = (
                path.read_text(encoding="utf-8"),
                path.name == "__init__.py",
            )
    return out


@functools.cache
def imported_names(module: str, source: str, is_package: bool) -> frozenset[str]:
    """Every dotted name the module imports: `import a.b` → a.b; `from a import b` → a.b."""
    names: set[str] = set()
    base = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                origin = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                origin = node.module or ""
            names.add(origin)
            names.update(f"{origin}.{alias.name}" for alias in node.names if alias.name != "*")
    return frozenset(names)


def import_graph(sources: Mapping[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Edges between the checked modules; an imported name resolves to the longest known module."""
    graph: dict[str, set[str]] = {}
    for module, (source, is_package) in sources.items():
        edges: set[str] = set()
        for name in imported_names(module, source, is_package):
            parts = name.split(".")
            for k in range(len(parts), 0, -1):
                target = ".".join(parts[:k])
                if target in sources:
                    if target != module and not sources[target][1]:
                        edges.add(target)  # packages' __init__ hold docstrings only
                    break
        graph[module] = edges
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _under(name: str, prefix: str) -> bool:
    if prefix.endswith("."):
        return name.startswith(prefix)
    return name == prefix or name.startswith(prefix + ".")


def violations(sources: Mapping[str, tuple[str, bool]]) -> list[str]:
    """One line per broken contract: forbidden imports, then cycles."""
    out: list[str] = []
    for module, (source, is_package) in sorted(sources.items()):
        names = imported_names(module, source, is_package)
        for importer, forbidden, why in CONTRACTS:
            if not _under(module, importer):
                continue
            for name in sorted(names):
                if any(_under(name, f) for f in forbidden) and not _under(name, module):
                    out.append(f"{module} imports {name}: {why}")
    out.extend("import cycle: " + " -> ".join(c) for c in cycles(import_graph(sources)))
    return out


if __name__ == "__main__":
    found = violations(read_sources())
    print("\n".join(found) or "no violations")
    raise SystemExit(1 if found else 0)
