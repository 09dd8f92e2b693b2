"""The package's import graph: no circles, and every import points down the layers.

Pure: reads the source with `ast`, imports nothing of the package. Every `import` counts,
module-level or inside a function (a lazy import is still a dependency).

The layers, lowest first, from DESIGN.md ("Dependencies point one way: http/ → scim/, store/,
events/; scim/ imports neither HTTP nor the database; events/ reads store/; nothing imports
http/ but app.py"). A module may import its own layer or any layer below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "scim_service"

# (layer, module prefixes). A module belongs to the layer of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # What every layer may use: configuration, errors, logging, redaction, token and signature
    # formats. None of these reads the database or knows HTTP.
    (
        "base",
        (
            "scim_service",
            "scim_service.config",
            "scim_service.errors",
            "scim_service.logs",
            "scim_service.redact",
            "scim_service.signing",
            "scim_service.tokens",
            "scim_service.lifecycle",
        ),
    ),
    # SCIM itself, pure: filters, PATCH, schemas, projection. No HTTP, no database.
    ("scim", ("scim_service.scim",)),
    # PostgreSQL: connections, named queries, rows in and out; the embedded server.
    ("store", ("scim_service.store", "scim_service.embedded")),
    # Events: their envelope, the publisher and its sinks. Reads store/.
    ("events", ("scim_service.events",)),
    # The service layer: what a request (or the CLI) asks for, in one transaction.
    (
        "service",
        (
            "scim_service.provisioning",
            "scim_service.auth",
            "scim_service.activity",
            "scim_service.fairness",
            "scim_service.metrics",
            "scim_service.restarts",
        ),
    ),
    # HTTP: middleware, handlers, and the typed app state they read.
    ("http", ("scim_service.http", "scim_service.keys")),
    # What wires everything together: the app factory, its route table, the server and the
    # CLI, and the OpenAPI document built from the handlers' bodies.
    (
        "app",
        (
            "scim_service.app",
            "scim_service.routes",
            "scim_service.server",
            "scim_service.supervisor",
            "scim_service.worker",
            "scim_service.cli",
            "scim_service.__main__",
            "scim_service.openapi",
        ),
    ),
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}

# Imports running up the layers that are known and waiting for a fix, as (importer, imported).
# Each entry names the issue that removes it; the list is meant to be empty.
ALLOWED_UPWARD: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from scim_service.store import outbox` imports the module store.outbox.
            targets = [
                f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module
                for a in node.names
            ]
        else:
            continue
        for target in targets:
            # `import a.b.c` names a module; walk up to the longest one that exists.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("scim_service") and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def layer_of(module: str) -> str | None:
    """The layer of the longest prefix naming `module` or a package holding it."""
    matches = [
        (len(prefix), layer)
        for layer, prefixes in LAYERS
        for prefix in prefixes
        if module == prefix or (module.startswith(prefix + ".") and prefix != "scim_service")
    ]
    return max(matches)[1] if matches else None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read() -> None:
    """The graph holds the package's modules and the edges a reader expects (the test would
    pass vacuously on an empty graph)."""
    graph = _graph()
    assert len(graph) > 50
    assert "scim_service.store.db" in graph["scim_service.store.users"]
    assert "scim_service.provisioning.users" in graph["scim_service.http.scim_users"]


def test_every_module_has_a_layer() -> None:
    """A new module (or package) is placed in a layer here before it can be checked."""
    missing = sorted(m for m in _graph() if layer_of(m) is None)
    assert missing == []


def test_no_import_cycles() -> None:
    """No circle of imports, through module-level or function-level imports."""
    assert _cycles(_graph()) == []


def test_imports_point_down_the_layers() -> None:
    """No module imports one of a higher layer: scim/ imports neither the database nor HTTP,
    store/ does not import events/, nothing below http/ imports it."""
    upward = sorted(
        (importer, imported)
        for importer, targets in _graph().items()
        for imported in targets
        if RANK[layer_of(imported) or "app"] > RANK[layer_of(importer) or "app"]
    )
    assert [u for u in upward if u not in ALLOWED_UPWARD] == []
    # An allow-list entry that no longer happens must go too.
    assert sorted(ALLOWED_UPWARD - set(upward)) == []
