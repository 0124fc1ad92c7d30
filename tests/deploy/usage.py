"""Which (API group, resource, verb) the operator's code uses, read from its source at test time.

``canaryflow.kube`` names every kind as a module-level ``Kind(api_version, kind, plural)`` constant
(``kube/kinds.py``), and talks to the API server through an ``Api`` whose methods map one-to-one onto RBAC
verbs. Reading the calls (``api.patch(DEPLOYMENT, ...)``) rather than keeping a table means that a module which
starts deleting Services, or a new kind, fails the RBAC test until the ClusterRole grants it.

- A helper that passes its ``kind`` parameter on to the API (``converge(api, kind, ...)`` reads, creates and
  replaces) is a *wrapper*: its calls count at each call site, for the kind given there.
- A kind argument is resolved through module-level tables of kinds (``_KINDS[ref.kind]``, ``_KINDS.get(k)``),
  conditionals, module-level helpers that return a kind (``_kind(canary)``), and a local name's bindings in its
  function (``for kind in (A, B)``, ``kind = _KINDS[...]``).
- A call whose kind cannot be resolved that way counts for every kind its module names: conservative, so a
  missing grant cannot hide behind a variable.
- kopf handlers (``kopf.daemon("flagger.app", "v1beta1", "canaries")``, also through module-level string
  constants) need what kopf does to a handled resource.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterable
from pathlib import Path

Permission = tuple[str, str, str]  # (API group, resource or resource/subresource, verb)
Known = dict[str, tuple[str, str]]  # Kind constant name -> (API group, plural)

# Api method -> the verbs the API server authorizes for it. Server-side apply is a PATCH that creates a missing
# object, and the API server then also checks "create"; watch() lists before it streams.
VERBS: dict[str, tuple[str, ...]] = {
    "get": ("get",),
    "list": ("list",),
    "watch": ("list", "watch"),
    "create": ("create",),
    "replace": ("update",),
    "replace_status": ("update",),
    "patch": ("patch",),
    "apply": ("patch", "create"),
    "delete": ("delete",),
}
# What kopf does to every resource it handles: list and watch it, patch its finalizers and progress annotations.
KOPF_VERBS = ("list", "watch", "patch")


def kinds(source: str) -> Known:
    """Constant name -> (API group, plural) for every module-level ``NAME = Kind(...)``."""
    found: Known = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        if not (isinstance(call.func, ast.Name) and call.func.id == "Kind"):
            continue
        args = {**dict(zip(("api_version", "kind", "plural"), call.args, strict=False)), **_keywords(call)}
        api_version, plural = (_string(args.get(k)) for k in ("api_version", "plural"))
        if api_version is None or plural is None:
            raise AssertionError(f"Kind(...) with non-literal api_version/plural at line {node.lineno}")
        for target in node.targets:
            if isinstance(target, ast.Name):
                found[target.id] = (api_version.rpartition("/")[0], plural)
    return found


Wrapped = dict[str, tuple[int, str, set[str]]]  # wrapper name -> (kind's position, kind's name, Api methods)


def wrappers(source: str, wrapped: Wrapped | None = None) -> Wrapped:
    """Function name -> (position of its kind parameter at call sites, its name, the Api methods it calls): the
    functions that pass a ``kind`` parameter on to the Api, or to a function of ``wrapped``."""
    found: dict[str, tuple[int, str, set[str]]] = {}
    for function, methods, kind in _kind_calls(ast.parse(source), wrapped or {}):
        params = _params(function)
        if isinstance(kind, ast.Name) and kind.id in params and function is not None:
            _, _, known_methods = found.setdefault(function.name, (params.index(kind.id), kind.id, set()))
            known_methods |= methods
    return found


def permissions(
    source: str, known: Known, wrapped: dict[str, tuple[int, str, set[str]]] | None = None
) -> set[Permission]:
    """Every permission the calls in one module need."""
    tree = ast.parse(source)
    named = {known[n] for n in _names(tree) if n in known}
    strings = _string_constants(tree)
    needed: set[Permission] = set()

    functions_by_name = {n.name: n for n in tree.body if isinstance(n, Function)}
    module = _Module(known, _tables(tree, known), functions_by_name)

    def grant(kind: ast.expr | None, methods: Iterable[str], function: Function | None) -> None:
        constants = _resolved(kind, function, module)
        targets = {known[c] for c in constants} if constants else named
        for method in methods:
            suffix = "/status" if method == "replace_status" else ""
            needed.update((g, p + suffix, v) for g, p in targets for v in VERBS[method])

    for function, methods, kind in _kind_calls(tree, wrapped or {}):
        if not (isinstance(kind, ast.Name) and kind.id in _params(function)):  # else counted at the call sites
            grant(kind, methods, function)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _is_kopf(node.func):
            words = {strings.get(_terminal(a) or "", _string(a)) for a in node.args}
            handled = {(g, p) for g, p in known.values() if p in words or f"{p}.{g}" in words}
            needed |= {(g, p, v) for g, p in handled for v in KOPF_VERBS}
    return needed


def used_by(package: Path, entry: str = "runtime") -> set[Permission]:
    """All permissions the operator process needs: the modules of ``canaryflow.kube`` that its wiring
    (``kube/runtime.py``) imports, directly or not. Other processes built on the same client (the GitOps
    controllers in ``kube/gitops``) run under their own ServiceAccount and are not counted."""
    sources = [path.read_text() for path in operator_modules(package, entry)]
    known: Known = {}
    for source in sources:
        known |= kinds(source)
    wrapped: dict[str, tuple[int, str, set[str]]] = {}
    while True:  # a helper that passes its kind on to a wrapper is one too: until no more are found
        found: dict[str, tuple[int, str, set[str]]] = {}
        for source in sources:
            for name, (index, param, methods) in wrappers(source, wrapped).items():
                _, _, merged = found.setdefault(name, (index, param, set()))
                merged |= methods
        if found == wrapped:
            break
        wrapped = found
    return set().union(*(permissions(source, known, wrapped) for source in sources))


def operator_modules(package: Path, entry: str) -> list[Path]:
    """The modules of the package reachable by imports from ``entry`` (a dotted name inside the package)."""
    prefix = "canaryflow.kube"
    seen: dict[str, Path] = {}
    todo = [f"{prefix}.{entry}"]
    while todo:
        name = todo.pop()
        relative = name.removeprefix(prefix).lstrip(".").replace(".", "/")
        path = next((p for p in (package / f"{relative}.py", package / relative / "__init__.py") if p.is_file()), None)
        if name in seen or path is None:
            continue
        seen[name] = path
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{path}:{node.lineno}: a relative import; this walk follows absolute ones")
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(prefix):
                todo += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.startswith(prefix)]
    assert seen, f"{package}: no module {entry}, where the operator is wired"
    return sorted(seen.values())


Function = ast.FunctionDef | ast.AsyncFunctionDef


def _enclosing(tree: ast.AST) -> dict[int, list[Function]]:
    """id(node) -> the functions it is in, innermost first."""
    enclosing: dict[int, list[Function]] = {}
    for node in ast.walk(tree):  # breadth first: outer functions come before inner ones
        if isinstance(node, Function):
            for inner in ast.walk(node):
                enclosing.setdefault(id(inner), []).insert(0, node)
    return enclosing


def _owner(chain: list[Function], kind: ast.expr | None) -> Function | None:
    """The function a kind argument belongs to: the innermost one that has it as a parameter (a nested ``plan``
    or a lambda writes with its outer function's ``kind``), else the innermost."""
    if isinstance(kind, ast.Name):
        for function in chain:
            if kind.id in _params(function):
                return function
    return chain[0] if chain else None


def _tables(tree: ast.Module, known: Known) -> dict[str, set[str]]:
    """Module-level dicts whose values are all Kind constants (``_KINDS = {"Deployment": DEPLOYMENT, ...}``)."""
    found: dict[str, set[str]] = {}
    for node in tree.body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) else None)
        )
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if isinstance(target, ast.Name) and isinstance(value, ast.Dict):
            constants = {_terminal(v) for v in value.values}
            if constants and constants <= set(known):
                found[target.id] = {c for c in constants if c}
    return found


@dataclasses.dataclass(frozen=True)
class _Module:
    known: Known
    tables: dict[str, set[str]]  # module-level dicts of Kind constants
    functions: dict[str, Function]  # module-level functions, for helpers that return a kind


def _resolved(kind: ast.expr | None, function: Function | None, module: _Module, depth: int = 0) -> set[str]:
    """The Kind constants an expression can be: a constant, an entry of a table of constants (``T[k]``,
    ``T.get(k)``), either branch of a conditional, what a module-level helper returns, or what a local name is
    bound to in its function (``for kind in (A, B)``, ``kind = ...``); empty when it cannot be told."""
    name = _terminal(kind)
    if name in module.known:
        return {name or ""}
    if depth > 5 or kind is None:
        return set()
    if isinstance(kind, ast.Subscript):
        return set(module.tables.get(_terminal(kind.value) or "", set()))
    if isinstance(kind, ast.Call) and isinstance(kind.func, ast.Attribute) and kind.func.attr == "get":
        return set(module.tables.get(_terminal(kind.func.value) or "", set()))
    if isinstance(kind, ast.Call) and isinstance(kind.func, ast.Name) and kind.func.id in module.functions:
        helper = module.functions[kind.func.id]
        values = [n.value for n in ast.walk(helper) if isinstance(n, ast.Return) and n.value is not None]
        return _all_resolved(values, helper, module, depth)
    if isinstance(kind, ast.IfExp):
        return _all_resolved([kind.body, kind.orelse], function, module, depth)
    if not isinstance(kind, ast.Name) or function is None:
        return set()
    values = []
    for node in ast.walk(function):
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and node.target.id == kind.id:
            values += node.iter.elts if isinstance(node.iter, ast.Tuple | ast.List) else [node.iter]
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == kind.id for t in node.targets):
            values.append(node.value)
    return _all_resolved(values, function, module, depth)


def _all_resolved(values: list[ast.expr], function: Function | None, module: _Module, depth: int) -> set[str]:
    """The union of what each value can be; empty (unknown) as soon as one of them is unknown."""
    found: set[str] = set()
    for value in values:
        constants = _resolved(value, function, module, depth + 1)
        if not constants:
            return set()
        found |= constants
    return found


def _kind_calls(
    tree: ast.AST, wrapped: dict[str, tuple[int, str, set[str]]]
) -> Iterable[tuple[Function | None, set[str], ast.expr | None]]:
    """(function the kind argument belongs to, Api methods, kind argument) of every call on an Api and of every
    call of a wrapper."""
    enclosing = _enclosing(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        chain = enclosing.get(id(node), [])
        if isinstance(node.func, ast.Attribute) and node.func.attr in VERBS and _is_api(node.func.value):
            kind = node.args[0] if node.args else _keywords(node).get("kind")
            yield _owner(chain, kind), {node.func.attr}, kind
        elif (name := _terminal(node.func)) in wrapped:
            index, param, methods = wrapped[name or ""]
            kind = node.args[index] if index < len(node.args) else _keywords(node).get(param)
            yield _owner(chain, kind), set(methods), kind


def _params(function: Function | None) -> list[str]:
    """Parameter names as a call site passes them (without ``self``/``cls``)."""
    if function is None:
        return []
    names = [a.arg for a in function.args.posonlyargs + function.args.args + function.args.kwonlyargs]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` and ``A, B = "x", "y"``."""
    found: dict[str, str] = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs = (
                zip(target.elts, node.value.elts, strict=False)
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                else [(target, node.value)]
            )
            found |= {t.id: s for t, v in pairs if isinstance(t, ast.Name) and (s := _string(v)) is not None}
    return found


def _keywords(call: ast.Call) -> dict[str, ast.expr]:
    return {k.arg: k.value for k in call.keywords if k.arg}


def _string(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _terminal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _names(tree: ast.AST) -> set[str]:
    return {n for n in (_terminal(x) for x in ast.walk(tree) if isinstance(x, ast.Name | ast.Attribute)) if n}


def _is_api(receiver: ast.expr) -> bool:
    """``api``, ``self.api``, ``self._api``, ``kube_api``...: the receiver's last name mentions the API."""
    name = _terminal(receiver)
    return name is not None and "api" in name.lower()


def _is_kopf(func: ast.Attribute) -> bool:
    node: ast.expr = func
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and node.id == "kopf"
