"""Reading Kubernetes-style YAML for validation: files, directories, multi-document streams and stdin.

Each document keeps where it came from (its file, its first line and the line of every key and list item), so
a problem found later by validation can be reported as ``FILE:LINE``. Malformed YAML, unreadable files and
missing paths become :class:`LoadProblem` values; nothing a user writes makes this module raise.

YAML is read as Kubernetes reads it (YAML 1.1: ``yes``/``on`` are booleans, ``0755`` is octal) and turned into
plain JSON-like values (dicts, lists, str, int, float, bool, None), the shape the API server would store.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MantissaNoDotYAML1_1Warning, MarkedYAMLError, YAMLError

#: The path argument that means "read standard input".
STDIN = "-"
YAML_SUFFIXES = (".yaml", ".yml")

# A line starting with "---" is a document marker wherever it appears (the YAML spec forbids it inside
# scalars), so splitting on it is exact, and lets one broken document leave the others readable.
_DOCUMENT_START = re.compile(r"^---(?=[ \t\r]|$)", re.MULTILINE)

YamlPath = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Document:
    """One YAML document: where it starts, its plain value, and the line of each key below it."""

    source: str
    line: int
    body: Any
    lines: Mapping[YamlPath, int] = dataclasses.field(default_factory=dict, repr=False)

    def line_of(self, path: Sequence[str | int]) -> int:
        """The line of ``path`` (e.g. ``("spec", "analysis", "stepWeight")``), or of its deepest key that
        exists: a missing field is reported where its parent is written."""
        for end in range(len(path), 0, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return self.line

    def part(self, path: YamlPath) -> Document:
        """The value at ``path`` as a document of its own (an item of a ``kind: List``), lines kept."""
        body: Any = self.body
        for key in path:
            body = body[key]
        depth = len(path)
        lines = {p[depth:]: line for p, line in self.lines.items() if p[:depth] == path and len(p) > depth}
        return Document(self.source, self.line_of(path), body, lines)


@dataclasses.dataclass(frozen=True, slots=True)
class LoadProblem:
    """A file that could not be read, or YAML that could not be parsed."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}" if self.line else f"{self.source}: {self.message}"


@dataclasses.dataclass(slots=True)
class Loaded:
    """The documents read from some paths, and what could not be read."""

    documents: list[Document] = dataclasses.field(default_factory=list)
    problems: list[LoadProblem] = dataclasses.field(default_factory=list)

    def extend(self, other: Loaded) -> None:
        self.documents.extend(other.documents)
        self.problems.extend(other.problems)


def load_paths(paths: Iterable[str]) -> Loaded:
    """Every document in ``paths``: files, directories (recursively, ``*.yaml``/``*.yml`` in sorted order,
    hidden directories skipped) and ``-`` for standard input."""
    loaded = Loaded()
    for given in paths:
        if given == STDIN:
            loaded.extend(load_text(sys.stdin.read(), "<stdin>"))
            continue
        path = Path(given)
        if path.is_dir():
            files = yaml_files(path)
            if not files:
                loaded.problems.append(LoadProblem(given, 0, "no *.yaml or *.yml files in this directory"))
            for file in files:
                loaded.extend(load_file(file))
        elif path.exists():
            loaded.extend(load_file(path))
        else:
            loaded.problems.append(LoadProblem(given, 0, "no such file or directory"))
    return loaded


def yaml_files(root: Path) -> list[Path]:
    """The YAML files under ``root`` in the order ``kubectl apply -R`` reads them (each directory's entries
    sorted by name, a subdirectory read where its name sorts); hidden directories (``.git``, ``.github``) are
    not resources, and symlinked directories are not followed (they may loop)."""
    found: list[Path] = []
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except OSError:
        return found
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if not entry.name.startswith("."):
                found.extend(yaml_files(Path(entry.path)))
        elif entry.name.endswith(YAML_SUFFIXES) and entry.is_file():
            found.append(Path(entry.path))
    return found


def load_file(path: Path) -> Loaded:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Loaded(problems=[LoadProblem(str(path), 0, f"not UTF-8 text ({exc.reason} at byte {exc.start})")])
    except OSError as exc:
        return Loaded(problems=[LoadProblem(str(path), 0, f"cannot read: {exc.strerror or exc}")])
    return load_text(text, str(path))


def load_text(text: str, source: str) -> Loaded:
    """The documents of one YAML stream; ``source`` names it in positions and problems."""
    loaded = Loaded()
    text = text.removeprefix("\ufeff")
    for offset, chunk in _chunks(text):
        for body, first_line, lines in _parse_chunk(chunk, offset, source, loaded.problems):
            loaded.documents.append(Document(source, first_line, body, lines))
    return loaded


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """``(line offset, text)`` for each part of ``text`` that begins at a ``---`` marker."""
    starts = [0, *(m.start() for m in _DOCUMENT_START.finditer(text) if m.start() > 0)]
    for begin, end in zip(starts, [*starts[1:], len(text)], strict=True):
        yield text.count("\n", 0, begin), text[begin:end]


def _parse_chunk(
    chunk: str, offset: int, source: str, problems: list[LoadProblem]
) -> Iterator[tuple[Any, int, dict[YamlPath, int]]]:
    reader = YAML(typ="rt")
    reader.version = (1, 1)  # what kubectl's YAML decoder speaks
    try:
        with warnings.catch_warnings():
            # ruamel warns that YAML 1.1 wants a dot in "1e3"; Go's YAML reads it as a float all the same.
            warnings.simplefilter("ignore", MantissaNoDotYAML1_1Warning)
            nodes = list(reader.load_all(chunk))
    except MarkedYAMLError as exc:
        problems.append(_malformed(exc, offset, source))
        return
    except (YAMLError, RecursionError, ValueError, TypeError) as exc:
        # ruamel raises plain errors for a few inputs (deep nesting, odd tags); they are still the user's YAML.
        problems.append(LoadProblem(source, offset + 1, f"malformed YAML: {type(exc).__name__}: {exc}"))
        return
    for node in nodes:
        if node is None:
            continue  # an empty document, e.g. after a trailing "---"
        lines: dict[YamlPath, int] = {}
        try:
            body = _plain(node, (), lines, offset, frozenset())
        except _Unsupported as exc:
            problems.append(LoadProblem(source, exc.line, str(exc)))
            continue
        except RecursionError:
            problems.append(LoadProblem(source, offset + 1, "unsupported YAML: nested too deeply"))
            continue
        yield body, _node_line(node, offset) or _first_content_line(chunk, offset), lines


def _malformed(exc: MarkedYAMLError, offset: int, source: str) -> LoadProblem:
    """ruamel's error as one line: what is wrong where it was found, and what it was reading, from where."""
    mark = exc.problem_mark or exc.context_mark
    line = offset + mark.line + 1 if mark is not None else offset + 1
    message = f"malformed YAML: {exc.problem or exc.context or 'unreadable'}"
    if exc.problem and exc.context:
        since = f" from line {offset + exc.context_mark.line + 1}" if exc.context_mark is not None else ""
        message += f" ({exc.context}{since})"
    return LoadProblem(source, line, message)


def _first_content_line(chunk: str, offset: int) -> int:
    """Where a document without position information (a bare scalar) starts: its first line that is not
    blank, a comment, a directive or a lone ``---``."""
    for number, line in enumerate(chunk.splitlines()):
        text = line.strip()
        if text and not text.startswith(("#", "%")) and text != "---":
            return offset + number + 1
    return offset + 1


class _Unsupported(ValueError):
    """YAML that parses but has no JSON equivalent (a list as a key, a recursive alias)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _node_line(node: Any, offset: int) -> int | None:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return None
    return offset + int(lc.line) + 1


def _plain(node: Any, path: YamlPath, lines: dict[YamlPath, int], offset: int, parents: frozenset[int]) -> Any:
    """``node`` as JSON-like Python values, recording the line of every key and list item under ``path``."""
    if isinstance(node, CommentedMap | CommentedSeq):
        if id(node) in parents:
            raise _Unsupported("unsupported YAML: a recursive alias", _node_line(node, offset) or offset + 1)
        parents = parents | {id(node)}
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        own_lines = node.lc.data
        for key, value in node.items():
            name = _key(key, _node_line(node, offset) or offset + 1)
            child = (*path, name)
            position = own_lines.get(key)
            # Keys merged in with "<<" have no position of their own: use the mapping's.
            line = offset + position[0] + 1 if position else _node_line(node, offset)
            if line is not None:
                lines[child] = line
            out[name] = _plain(value, child, lines, offset, parents)
        return out
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, value in enumerate(node):
            position = node.lc.data.get(index)
            if position:
                lines[(*path, index)] = offset + position[0] + 1
            items.append(_plain(value, (*path, index), lines, offset, parents))
        return items
    return _scalar(node)


def _scalar(node: Any) -> Any:
    if isinstance(node, TaggedScalar):  # a custom tag such as "!Ref x": Kubernetes keeps the text
        return str(node.value)
    if node is None or type(node) in (str, bool, int, float):
        return node
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        # ruamel's ScalarBoolean (an anchored boolean) is an int subclass that prints as true/false.
        return bool(node) if type(node).__name__ == "ScalarBoolean" else int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime.date):  # JSON has no dates: the API server sees the text
        return node.isoformat()
    if isinstance(node, bytes):
        return node.decode("utf-8", errors="replace")
    return str(node)


def _key(key: Any, line: int) -> str:
    # sigs.k8s.io/yaml turns scalar keys into JSON strings the same way; a list or mapping as key has no JSON.
    if isinstance(key, CommentedMap | CommentedSeq) or type(key).__name__.startswith("CommentedKey"):
        raise _Unsupported("unsupported YAML: a list or mapping used as a key", line)
    value = _scalar(key)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
