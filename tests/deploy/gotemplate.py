"""A minimal evaluator for the Go-template subset the Helm chart uses (helm is not installed here).

Supported, with Go's and Helm's semantics: ``{{- -}}`` whitespace trimming, comments, ``define``/``include``,
``if``/``else``/``end``, ``range`` (over a list, with or without ``$var :=``), top-level ``$var :=``, ``$``, field
chains on ``.`` and variables, parenthesised pipelines, ``|``, string and integer literals, and the functions in
``FUNCTIONS`` plus ``include``. Anything else is an error, and so is printing a value that is missing (where Helm
prints an empty string): a typo in ``.Values`` fails the test instead of rendering silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, NoReturn

import yaml

_ACTION = re.compile(r"{{(-\s)?(.*?)(\s-)?}}", re.DOTALL)
_TOKEN = re.compile(r'\s*("(?:\\.|[^"\\])*"|:=|\(|\)|\||\$?[\w.]*|\$)')


class TemplateError(Exception):
    pass


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and not (isinstance(value, list | dict) and not value)


def _indent(n: int, text: str) -> str:
    return "\n".join(" " * n + line for line in str(text).split("\n"))


def _fail(message: str) -> NoReturn:
    raise TemplateError(message)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "toYaml": lambda value: yaml.safe_dump(value, sort_keys=True, default_flow_style=False).rstrip("\n"),
    "nindent": lambda n, text: "\n" + _indent(n, text),
    "quote": lambda value: json.dumps(str(value)),
    "default": lambda fallback, value=None: value if _truthy(value) else fallback,
    "int": int,
    "gt": lambda a, b: a > b,
    "not": lambda value: not _truthy(value),
    "and": lambda *args: next((a for a in args if not _truthy(a)), args[-1]),
    "or": lambda *args: next((a for a in args if _truthy(a)), args[-1]),
    "printf": lambda fmt, *args: fmt % args,
    "join": lambda sep, items: sep.join(str(i) for i in items),
    "trunc": lambda n, text: text[:n],
    "trimSuffix": lambda suffix, text: text.removesuffix(suffix),
    "fail": _fail,
}


def _parse(source: str) -> tuple[list[Any], dict[str, list[Any]]]:
    """The template as a tree of ("text", s) / ("out", expr) / ("if", expr, then, else) / ("range", var, expr,
    body) / ("set", var, expr) nodes, and its ``define`` blocks."""
    parts: list[Any] = []
    position = 0
    for match in _ACTION.finditer(source):
        text = source[position : match.start()]
        parts.append(text.rstrip() if match.group(1) else text)
        parts.append(("action", match.group(2).strip(), bool(match.group(3))))
        position = match.end()
    parts.append(source[position:])
    for i, part in enumerate(parts):  # a right trim removes the whitespace that follows the action
        if isinstance(part, tuple) and part[2]:
            parts[i + 1] = parts[i + 1].lstrip()
    defines: dict[str, list[Any]] = {}
    items = [p if isinstance(p, tuple) else ("text", p) for p in parts]
    body, stop = _block(items, 0, defines)
    if stop != len(items):
        raise TemplateError(f"unexpected {items[stop][1]!r}")
    return body, defines


def _block(items: list[Any], i: int, defines: dict[str, list[Any]]) -> tuple[list[Any], int]:
    nodes: list[Any] = []
    while i < len(items):
        kind, text = items[i][0], items[i][1]
        i += 1
        if kind == "text":
            nodes.append(("text", text))
        elif text.startswith("/*"):
            continue
        elif text in ("end", "else"):
            return nodes, i - 1
        elif text.startswith(("if ", "range ", "define ")):
            word, _, rest = text.partition(" ")
            inner, i = _block(items, i, defines)
            other: list[Any] = []
            if i < len(items) and items[i][1] == "else" and word == "if":
                other, i = _block(items, i + 1, defines)
            if i >= len(items) or items[i][1] != "end":
                raise TemplateError(f"{word} {rest!r} without end (else is for if only)")
            i += 1
            if word == "define":
                defines[json.loads(rest)] = inner
            elif word == "if":
                nodes.append(("if", rest, inner, other))
            else:
                var, _, expr = rest.rpartition(":=")
                nodes.append(("range", var.strip() or None, expr.strip(), inner))
        elif re.match(r"\$\w+\s*:=", text):
            var, _, expr = text.partition(":=")
            nodes.append(("set", var.strip(), expr.strip()))
        else:
            nodes.append(("out", text))
    return nodes, i


class Renderer:
    def __init__(self, files: dict[str, str]) -> None:
        self.trees: dict[str, list[Any]] = {}
        self.defines: dict[str, list[Any]] = {}
        for name, source in files.items():
            self.trees[name], defines = _parse(source)
            self.defines |= defines

    def render(self, name: str, context: Any) -> str:
        return self._run(self.trees[name], context, {"$": context})

    def _run(self, nodes: list[Any], dot: Any, env: dict[str, Any]) -> str:
        out: list[str] = []
        for node in nodes:
            if node[0] == "text":
                out.append(node[1])
            elif node[0] == "out":
                value = self._eval(node[1], dot, env)
                if value is None:
                    raise TemplateError(f"{{{{ {node[1]} }}}} has no value")
                out.append(str(value).lower() if isinstance(value, bool) else str(value))
            elif node[0] == "set":
                env[node[1]] = self._eval(node[2], dot, env)
            elif node[0] == "if":
                branch = node[2] if _truthy(self._eval(node[1], dot, env)) else node[3]
                out.append(self._run(branch, dot, dict(env)))
            else:
                for item in self._eval(node[2], dot, env) or []:
                    scope = {**env, node[1]: item} if node[1] else dict(env)
                    out.append(self._run(node[3], item, scope))
        return "".join(out)

    def _eval(self, expr: str, dot: Any, env: dict[str, Any]) -> Any:
        tokens, position = [], 0
        while position < len(expr.rstrip()):
            match = _TOKEN.match(expr, position)
            if not match or not match.group(1):
                raise TemplateError(f"cannot parse {expr!r} at {expr[position:]!r}")
            tokens.append(match.group(1))
            position = match.end()
        value, rest = self._pipeline(tokens, dot, env)
        if rest:
            raise TemplateError(f"cannot parse {expr!r} at {rest}")
        return value

    def _pipeline(self, tokens: list[str], dot: Any, env: dict[str, Any]) -> tuple[Any, list[str]]:
        value, piped = None, False
        while True:
            args: list[Any] = []
            while tokens and tokens[0] not in ("|", ")"):
                if tokens[0] == "(":
                    inner, tokens = self._pipeline(tokens[1:], dot, env)
                    if tokens[:1] != [")"]:
                        raise TemplateError("unbalanced parentheses")
                    args.append(inner)
                    tokens = tokens[1:]
                else:
                    args.append(self._term(tokens[0], dot, env))
                    tokens = tokens[1:]
            if piped:
                args.append(value)
            if not callable(args[0]) and len(args) > 1:
                raise TemplateError(f"{args[0]!r} is not a function")
            value = args[0](*args[1:]) if callable(args[0]) else args[0]
            if not tokens or tokens[0] != "|":
                return value, tokens
            tokens, piped = tokens[1:], True

    def _term(self, token: str, dot: Any, env: dict[str, Any]) -> Any:
        if token.startswith('"'):
            return json.loads(token)
        if token.isdigit():
            return int(token)
        if token == "include":
            return lambda name, context: self._run(self.defines[name], context, {"$": context})
        if token in FUNCTIONS:
            return FUNCTIONS[token]
        head, *fields = token.split(".")
        if head.startswith("$"):
            if head not in env:
                raise TemplateError(f"undefined variable {head}")
            value = env[head]
        elif head == "":
            value = dot
        else:
            raise TemplateError(f"unknown function {token!r}")
        for field in (f for f in fields if f):
            if not isinstance(value, dict):  # Helm: "nil pointer evaluating interface {}.field"
                raise TemplateError(f"{token}: no field {field} in {value!r}")
            value = value.get(field)
        return value
