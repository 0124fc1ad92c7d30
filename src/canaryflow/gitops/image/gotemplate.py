"""A checked subset of Go's ``text/template``, enough for Flux commit message templates.

Supported: text; ``{{ pipeline }}``; ``{{- `` / `` -}}`` whitespace trimming; ``{{/* comments */}}``;
``if`` / ``else if`` / ``else`` / ``end``; ``range`` (``$v :=`` or ``$k, $v :=``, and ``else``); ``with``;
``$x := pipeline``; pipelines with ``|``; parentheses; string, raw-string and integer literals; the
functions in ``FUNCTIONS`` (Go's builtins and the common Sprig ones that Flux's hermetic function map has).

Templates are type-checked against a schema of the data before anything is rendered: an unknown field,
function or construct is a TemplateError naming the line, even inside a branch that would not run. Go
reports such mistakes only when execution reaches them; a commit message that is silently wrong is worse
than an automation that refuses to start, so we are stricter.

Types in a schema: ``STR``, ``BOOL``, ``INT``, ``ANY``, ``("map", key, value)``, ``("list", elem)``, and
structs ``(name, {field: type})``. Runtime values: str, int, bool, list, dict and ``Struct``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["ANY", "BOOL", "FUNCTIONS", "INT", "STR", "Struct", "TemplateError", "check", "execute", "go_str", "parse"]

STR, BOOL, INT, ANY = "string", "bool", "int", "any"
Type = Any  # str | tuple — kept loose: the schema is data, not Python types


class TemplateError(ValueError):
    """A template outside the supported subset or inconsistent with the data; says where and why."""


@dataclasses.dataclass(frozen=True, order=True)
class Struct:
    """A Go struct value: ordered fields and, when the Go type has a ``String()`` method, its text."""

    type_name: str
    fields: tuple[tuple[str, Any], ...]
    text: str | None = dataclasses.field(default=None, compare=False)

    def get(self, name: str) -> Any:
        return dict(self.fields)[name]


def go_str(value: Any) -> str:
    """Go's ``%v`` formatting for the values a template can hold."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, Struct):
        return value.text if value.text is not None else "{" + " ".join(go_str(v) for _, v in value.fields) + "}"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{go_str(k)}:{go_str(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, Sequence):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    return str(value)


def _truth(value: Any) -> bool:
    return bool(value)


def _printf(fmt: str, *args: Any) -> str:
    it = iter(args)

    def one(m: re.Match[str]) -> str:
        if m.group(1) == "%":
            return "%"
        arg = next(it, None)
        return '"' + go_str(arg).replace('"', '\\"') + '"' if m.group(1) == "q" else go_str(arg)

    return re.sub(r"%([svdq%])", one, fmt)


FUNCTIONS: dict[str, tuple[int, int, Type, Callable[..., Any]]] = {
    # name: (min args, max args or -1, result type, implementation); a piped value is the last argument
    "and": (1, -1, ANY, lambda *a: next((x for x in a if not _truth(x)), a[-1])),
    "or": (1, -1, ANY, lambda *a: next((x for x in a if _truth(x)), a[-1])),
    "not": (1, 1, BOOL, lambda a: not _truth(a)),
    "eq": (2, -1, BOOL, lambda a, *b: any(a == x for x in b)),
    "ne": (2, 2, BOOL, lambda a, b: a != b),
    "len": (1, 1, INT, len),
    "print": (0, -1, STR, lambda *a: "".join(go_str(x) for x in a)),
    "printf": (1, -1, STR, _printf),
    "lower": (1, 1, STR, lambda s: go_str(s).lower()),
    "upper": (1, 1, STR, lambda s: go_str(s).upper()),
    "title": (1, 1, STR, lambda s: re.sub(r"\b\w", lambda m: m.group(0).upper(), go_str(s))),
    "trim": (1, 1, STR, lambda s: go_str(s).strip()),
    "trimPrefix": (2, 2, STR, lambda p, s: go_str(s).removeprefix(p)),
    "trimSuffix": (2, 2, STR, lambda p, s: go_str(s).removesuffix(p)),
    "contains": (2, 2, BOOL, lambda sub, s: sub in go_str(s)),
    "hasPrefix": (2, 2, BOOL, lambda p, s: go_str(s).startswith(p)),
    "hasSuffix": (2, 2, BOOL, lambda p, s: go_str(s).endswith(p)),
    "replace": (3, 3, STR, lambda old, new, s: go_str(s).replace(old, new)),
    "trunc": (2, 2, STR, lambda n, s: go_str(s)[:n] if n >= 0 else go_str(s)[n:]),
    "quote": (1, -1, STR, lambda *a: " ".join(f'"{go_str(x)}"' for x in a)),
    "default": (2, 2, ANY, lambda d, v: v if _truth(v) else d),
    "join": (2, 2, STR, lambda sep, items: sep.join(go_str(x) for x in items)),
}

# --- parsing --------------------------------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(-[ \t\r\n])?(.*?)([ \t\r\n]-)?\}\}", re.S)
_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<raw>`[^`]*`)|(?P<num>-?\d+)|(?P<decl>:=)|(?P<punct>[|(),])'
    r"|(?P<var>\$\w*(?:\.\w+)*)|(?P<field>(?:\.\w+)+|\.)|(?P<ident>[A-Za-z_]\w*))"
)
_BLOCKS = ("if", "range", "with")


@dataclasses.dataclass
class Node:
    kind: str  # text | action | if | range | with
    line: int
    text: str = ""
    pipe: Any = None
    decl: tuple[str, ...] = ()
    body: list[Node] = dataclasses.field(default_factory=list)
    other: list[Node] = dataclasses.field(default_factory=list)
    chained: bool = False  # an "else if" opened inside its parent's else part


def _error(line: int, message: str) -> TemplateError:
    return TemplateError(f"commit message template:{line}: {message}")


def _pieces(source: str) -> list[tuple[str, int, str]]:
    out: list[tuple[str, int, str]] = []
    pos, trim_next = 0, False
    for m in _ACTION.finditer(source):
        text = source[pos : m.start()]
        text = text.lstrip() if trim_next else text
        out.append(("text", pos, text.rstrip() if m.group(1) else text))
        body = m.group(2).strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            out.append(("action", m.start(), body))
        trim_next, pos = bool(m.group(3)), m.end()
    rest = source[pos:]
    if "{{" in rest:
        raise _error(source.count("\n", 0, pos + rest.index("{{")) + 1, "unclosed action")
    out.append(("text", pos, rest.lstrip() if trim_next else rest))
    return out


def _tokens(line: int, body: str) -> list[tuple[str, str]]:
    toks, i = [], 0
    while body[i:].strip():
        m = _TOKEN.match(body, i)
        if m is None or m.lastgroup is None:
            raise _error(line, f"unexpected {body[i:].strip()[:20]!r} in {{{{{body}}}}}")
        toks.append((m.lastgroup, m.group(m.lastgroup)))
        i = m.end()
    return toks


def _pipeline(line: int, toks: list[tuple[str, str]], *, allow_decl: bool) -> tuple[tuple[str, ...], Any]:
    decl: list[str] = []
    if ("decl", ":=") in toks:
        if not allow_decl:
            raise _error(line, "variable declaration not allowed here")
        i = toks.index(("decl", ":="))
        names = [t for t in toks[:i] if t != ("punct", ",")]
        if not names or len(names) > 2 or any(k != "var" or "." in v or v == "$" for k, v in names):
            raise _error(line, "malformed variable declaration")
        decl, toks = [v for _, v in names], toks[i + 1 :]
    commands: list[list[Any]] = [[]]
    outer: list[list[list[Any]]] = []
    for kind, value in toks:
        if value == "|" and kind == "punct":
            commands.append([])
        elif value == "(" and kind == "punct":
            outer.append(commands)
            commands = [[]]
        elif value == ")" and kind == "punct":
            if not outer or any(not c for c in commands):
                raise _error(line, "unexpected )")
            inner: Any = ("pipe", commands)
            commands = outer.pop()
            commands[-1].append(inner)
        elif kind == "punct":
            raise _error(line, f"unexpected {value!r}")
        else:
            commands[-1].append((kind, value))
    if outer:
        raise _error(line, "unclosed (")
    if any(not c for c in commands):
        raise _error(line, "missing value or command in pipeline")
    return tuple(decl), ("pipe", commands)


def parse(source: str) -> list[Node]:
    """Parse ``source`` into nodes; syntax outside the subset is a TemplateError."""
    root: list[Node] = []
    stack: list[tuple[Node, bool]] = []  # open blocks, and whether we are in their else part

    def target() -> list[Node]:
        if not stack:
            return root
        node, in_else = stack[-1]
        return node.other if in_else else node.body

    for kind, pos, body in _pieces(source):
        line = source.count("\n", 0, pos) + 1
        if kind == "text":
            if body:
                target().append(Node("text", line, text=body))
            continue
        toks = _tokens(line, body)
        if not toks:
            raise _error(line, "empty action {{}}")
        head = toks[0][1] if toks[0][0] == "ident" else None
        if head in _BLOCKS:
            decl, pipe = _pipeline(line, toks[1:], allow_decl=head == "range")
            node = Node(head, line, pipe=pipe, decl=decl)
            target().append(node)
            stack.append((node, False))
        elif head == "else":
            if not stack or stack[-1][1]:
                raise _error(line, "unexpected {{else}}")
            node, _ = stack.pop()
            stack.append((node, True))
            if len(toks) > 1:
                if toks[1] != ("ident", "if") or node.kind != "if":
                    raise _error(line, f"unsupported {{{{{body}}}}}")
                _, pipe = _pipeline(line, toks[2:], allow_decl=False)
                inner = Node("if", line, pipe=pipe, chained=True)
                node.other.append(inner)
                stack.append((inner, False))
        elif head == "end":
            if len(toks) > 1 or not stack:
                raise _error(line, "unexpected {{end}}")
            while stack and stack.pop()[0].chained:
                pass
        elif head in ("define", "template", "block", "break", "continue", "nil"):
            raise _error(line, f"{{{{{head}}}}} is not supported in commit message templates")
        else:
            decl, pipe = _pipeline(line, toks, allow_decl=True)
            target().append(Node("action", line, pipe=pipe, decl=decl))
    if stack:
        raise _error(stack[-1][0].line, f"{{{{{stack[-1][0].kind}}}}} without {{{{end}}}}")
    return root


# --- checking and executing share one walker; `typed` selects types or values --------------------------


def _field_type(line: int, t: Type, name: str, removed: Mapping[tuple[str, str], str]) -> Type:
    if t == ANY:
        return ANY
    if isinstance(t, tuple) and t[0] == "map":
        return t[2]
    if isinstance(t, tuple) and isinstance(t[1], dict):
        if name in t[1]:
            return t[1][name]
        if (t[0], name) in removed:
            raise _error(line, removed[(t[0], name)])
        raise _error(line, f"can't evaluate field {name} in type {t[0]} (fields: {', '.join(t[1])})")
    raise _error(line, f"can't evaluate field {name} in type {t if isinstance(t, str) else t[0]}")


def _field_value(value: Any, name: str) -> Any:
    if isinstance(value, Struct):
        return value.get(name)
    if isinstance(value, Mapping):
        return value.get(name, "")
    raise TemplateError(f"can't evaluate field {name} in {go_str(value)!r}")


@dataclasses.dataclass
class _Walker:
    typed: bool  # True: compute types (check); False: compute values (execute)
    removed: Mapping[tuple[str, str], str]

    def operand(self, line: int, op: Any, dot: Any, env: dict[str, Any]) -> Any:
        kind, value = op
        if kind == "pipe":
            return self.pipe(line, op, dot, env)
        if kind in ("str", "raw"):
            return STR if self.typed else (value[1:-1] if kind == "raw" else _unquote(value))
        if kind == "num":
            return INT if self.typed else int(value)
        if kind == "ident":
            if value in ("true", "false"):
                return BOOL if self.typed else value == "true"
            raise _error(line, f"function {value!r} used as a value or not defined")
        if kind == "var":
            name, *fields = value.split(".")
            if name not in env:
                raise _error(line, f"undefined variable {name}")
            current = env[name]
        else:
            current, fields = dot, [f for f in value.split(".") if f]
        for f in fields:
            current = _field_type(line, current, f, self.removed) if self.typed else _field_value(current, f)
        return current

    def pipe(self, line: int, pipe: Any, dot: Any, env: dict[str, Any]) -> Any:
        result: Any = None
        for i, command in enumerate(pipe[1]):
            head = command[0]
            if head[0] == "ident" and head[1] not in ("true", "false"):
                if head[1] not in FUNCTIONS:
                    raise _error(line, f'function "{head[1]}" not defined')
                lo, hi, rtype, impl = FUNCTIONS[head[1]]
                args = [self.operand(line, a, dot, env) for a in command[1:]] + ([result] if i else [])
                if len(args) < lo or (hi >= 0 and len(args) > hi):
                    raise _error(line, f"wrong number of arguments for {head[1]}: got {len(args)}")
                result = rtype if self.typed else impl(*args)
            elif len(command) > 1 or i:
                raise _error(line, "can't give argument to non-function " + str(head[1]))
            else:
                result = self.operand(line, head, dot, env)
        return result

    def run(self, nodes: list[Node], dot: Any, env: dict[str, Any], out: list[str]) -> None:
        for n in nodes:
            if n.kind == "text":
                out.append(n.text)
                continue
            value = self.pipe(n.line, n.pipe, dot, env)
            if n.kind == "action":
                if n.decl:
                    env[n.decl[0]] = value
                elif not self.typed:
                    out.append(go_str(value))
            elif n.kind in ("if", "with"):
                inner = value if n.kind == "with" else dot
                if self.typed:
                    self.run(n.body, inner, dict(env), out)
                    self.run(n.other, dot, dict(env), out)
                else:
                    self.run(n.body if _truth(value) else n.other, inner if _truth(value) else dot, dict(env), out)
            else:
                self.range(n, value, dot, env, out)

    def range(self, n: Node, value: Any, dot: Any, env: dict[str, Any], out: list[str]) -> None:
        if self.typed:
            if value == ANY:
                key, elem = ANY, ANY
            elif isinstance(value, tuple) and value[0] in ("map", "list"):
                key, elem = (value[1], value[2]) if value[0] == "map" else (INT, value[1])
            else:
                raise _error(n.line, f"range can't iterate over {value if isinstance(value, str) else value[0]}")
            items: list[tuple[Any, Any]] = [(key, elem)]
        elif isinstance(value, Mapping):
            items = sorted(value.items())
        elif isinstance(value, Sequence) and not isinstance(value, str):
            items = list(enumerate(value))
        else:
            raise TemplateError(f"range can't iterate over {go_str(value)}")
        for k, v in items:
            scope = dict(env)
            if len(n.decl) == 2:
                scope[n.decl[0]], scope[n.decl[1]] = k, v
            elif n.decl:
                scope[n.decl[0]] = v
            self.run(n.body, v, scope, out)
        if self.typed or not items:
            self.run(n.other, dot, dict(env), out)


def _unquote(literal: str) -> str:
    return literal[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")


def check(nodes: list[Node], schema: Type, removed: Mapping[tuple[str, str], str] | None = None) -> None:
    """Type-check every branch of ``nodes`` against ``schema``; TemplateError on the first problem."""
    _Walker(True, removed or {}).run(nodes, schema, {"$": schema}, [])


def execute(nodes: list[Node], data: Any) -> str:
    """Render checked ``nodes`` with ``data``."""
    out: list[str] = []
    _Walker(False, {}).run(nodes, data, {"$": data}, out)
    return "".join(out)
