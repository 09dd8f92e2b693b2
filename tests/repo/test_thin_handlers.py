"""The HTTP layer stays thin (issue 16): every aiohttp handler is at most 25 lines, and no
module under http/ reaches into store/: handlers decode, call the service layer
(scim_service.provisioning), and encode. Pure: reads the source, imports nothing of it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "scim_service"
HTTP = PACKAGE / "http"
MAX_HANDLER_LINES = 25
ROUTE_METHODS = frozenset(
    ("add_get", "add_post", "add_put", "add_patch", "add_delete", "add_head", "add_route")
)
# Modules of http/ that may import a store/ module, each with the reason.
STORE_IMPORTS_ALLOWED = {
    # The middleware is the last line of error rendering: it applies store.db.driver_error
    # (the one translation of driver errors, kept at the storage boundary) to a driver error
    # that escaped a handler. It reads and writes no data.
    "middleware.py": {"scim_service.store.db"},
}


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text("utf-8"), str(path))


def _imported_names(tree: ast.Module) -> dict[str, tuple[str, str | None]]:
    """Local name → (module, attribute or None) for every `from x import y [as z]`."""
    names: dict[str, tuple[str, str | None]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                local = alias.asname or alias.name
                submodule = f"{node.module}.{alias.name}"
                if (PACKAGE.parent / (submodule.replace(".", "/") + ".py")).exists():
                    names[local] = (submodule, None)  # `from scim_service.http import admin`
                else:
                    names[local] = (node.module, alias.name)  # a function of a module
    return names


def _module_file(module: str) -> Path:
    return PACKAGE.parent / (module.replace(".", "/") + ".py")


def _handler_arg(node: ast.AST) -> ast.expr | None:
    """The handler of a route registration (`add_get(path, handler)`) or of an admin operation
    declaration (`Operation(method, path, handler, ...)` in http/operations.py)."""
    if not isinstance(node, ast.Call):
        return None
    if isinstance(node.func, ast.Attribute) and node.func.attr in ROUTE_METHODS:
        return node.args[-1] if len(node.args) >= 2 else None
    if isinstance(node.func, ast.Name) and node.func.id == "Operation" and len(node.args) >= 3:
        return node.args[2]
    return None


def registered_handlers() -> set[tuple[Path, str]]:
    """(file, function) of every handler the route table, the admin operations' table and the
    app factory register."""
    found: set[tuple[Path, str]] = set()
    for source in (PACKAGE / "routes.py", HTTP / "operations.py", PACKAGE / "app.py"):
        tree = _parse(source)
        names = _imported_names(tree)
        for node in ast.walk(tree):
            handler = _handler_arg(node)
            if handler is None:
                continue
            if isinstance(handler, ast.Attribute) and isinstance(handler.value, ast.Name):
                module, attr = names[handler.value.id]
                assert attr is None, f"{source.name}: {ast.unparse(handler)} is not module.func"
                found.add((_module_file(module), handler.attr))
            elif isinstance(handler, ast.Name):
                module, func = names[handler.id]
                assert func is not None, f"{source.name}: {handler.id} is a module"
                found.add((_module_file(module), func))
            else:
                raise AssertionError(f"{source.name}: cannot resolve {ast.unparse(handler)}")
    return found


def _is_request_handler(fn: ast.AsyncFunctionDef) -> bool:
    """`async def f(request: web.Request) -> web.Response`: the aiohttp handler signature."""
    args = fn.args
    params = args.posonlyargs + args.args + args.kwonlyargs
    return (
        len(params) == 1
        and args.vararg is None
        and args.kwarg is None
        and params[0].annotation is not None
        and ast.unparse(params[0].annotation) == "web.Request"
        and fn.returns is not None
        and ast.unparse(fn.returns) in ("web.Response", "web.StreamResponse")
    )


def _functions(path: Path) -> dict[str, ast.AsyncFunctionDef | ast.FunctionDef]:
    return {
        n.name: n
        for n in _parse(path).body
        if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef)
    }


def all_handlers() -> dict[str, ast.AsyncFunctionDef | ast.FunctionDef]:
    """Every registered handler, and every other function under http/ with a handler's
    signature, by `module.py:function`."""
    out: dict[str, ast.AsyncFunctionDef | ast.FunctionDef] = {}
    for path, name in registered_handlers():
        fn = _functions(path).get(name)
        assert fn is not None, f"the route table names {path.name}:{name}, which is not defined"
        out[f"{path.name}:{name}"] = fn
    for path in sorted(HTTP.glob("*.py")):
        for name, fn in _functions(path).items():
            if isinstance(fn, ast.AsyncFunctionDef) and _is_request_handler(fn):
                out[f"{path.name}:{name}"] = fn
    return out


def test_the_route_table_is_found() -> None:
    """The checks below see every route (a route table the parser misread would pass them)."""
    handlers = registered_handlers()
    assert len(handlers) >= 50
    assert (HTTP / "scim_search.py", "search_all") in handlers
    assert (HTTP / "metrics.py", "metrics") in handlers


def test_every_handler_is_at_most_25_lines() -> None:
    """From `def` to the last line, decorators excluded: decode, call the service, encode."""
    long = {
        name: fn.end_lineno - fn.lineno + 1
        for name, fn in all_handlers().items()
        if fn.end_lineno is not None and fn.end_lineno - fn.lineno + 1 > MAX_HANDLER_LINES
    }
    assert long == {}, f"handlers over {MAX_HANDLER_LINES} lines: {long}"


def test_http_does_not_import_the_store() -> None:
    """Handlers call the service layer only; store/ is the service layer's to call."""
    found: dict[str, set[str]] = {}
    for path in sorted(HTTP.glob("*.py")):
        for node in ast.walk(_parse(path)):
            modules: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module == "scim_service.store":
                modules = [f"{node.module}.{a.name}" for a in node.names]  # store modules
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            allowed = STORE_IMPORTS_ALLOWED.get(path.name, set())
            for module in modules:
                store = module == "scim_service.store" or module.startswith("scim_service.store.")
                if store and module not in allowed:
                    found.setdefault(path.name, set()).add(module)
    assert found == {}, f"http/ modules importing store/: {found}"
