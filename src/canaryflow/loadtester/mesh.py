"""Sending the load tester's commands through the local mesh, so the seed's commands run unchanged.

In Kubernetes a sidecar captures a task's traffic; locally the mesh is an Envoy used as HTTP proxy. curl,
httpx and most clients follow ``http_proxy``/``HTTP_PROXY``, but ``hey`` ignores the proxy environment and
needs ``-x``. ``with_hey_proxy`` inserts that flag into each ``hey`` invocation of a command line, leaving
everything else byte for byte as written, so ``hey -z 1m -q 10 -c 2 http://backend-canary.prod:9898/``
reaches the canary through Envoy. Pure functions: no I/O.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import urllib.parse
from collections.abc import Iterator

LOOPBACK = ("127.0.0.1", "localhost", "::1")
_SEPARATORS = frozenset(";&|()\n")
_BLANKS = frozenset(" \t")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_TRANSPARENT = frozenset({"exec", "time", "nohup", "command"})  # words that run the next word as a command
_PROXY_FLAGS = ("-x", "--x")


def proxy_environment(proxy: str) -> dict[str, str]:
    """Variables that send a task's HTTP through the mesh, except loopback (the load tester's neighbours)."""
    no_proxy = ",".join(LOOPBACK[:2])
    return {"http_proxy": proxy, "HTTP_PROXY": proxy, "no_proxy": no_proxy, "NO_PROXY": no_proxy}


@dataclasses.dataclass(frozen=True, slots=True)
class _Word:
    text: str  # the word after quote removal
    end: int  # offset just past the word in the command line


def _words(command: str) -> Iterator[_Word | None]:
    """Shell words with their positions; None where a new command may start (``;``, ``&&``, ``|``…).

    Just enough of the shell's quoting rules to tell a ``hey`` command from the word hey inside quotes.
    """
    i, n = 0, len(command)
    while i < n:
        char = command[i]
        if char in _BLANKS:
            i += 1
        elif char in _SEPARATORS:
            yield None
            i += 1
        elif char == "#":  # a comment runs to the end of the line
            newline = command.find("\n", i)
            i = n if newline < 0 else newline
        else:
            text: list[str] = []
            while i < n and command[i] not in _BLANKS and command[i] not in _SEPARATORS:
                char = command[i]
                if char == "\\" and i + 1 < n:
                    text.append(command[i + 1])
                    i += 2
                elif char == "'":
                    close = command.find("'", i + 1)
                    close = n if close < 0 else close
                    text.append(command[i + 1 : close])
                    i = close + 1
                elif char == '"':
                    i += 1
                    while i < n and command[i] != '"':
                        if command[i] == "\\" and i + 1 < n and command[i + 1] in '"\\$`':
                            i += 1
                        text.append(command[i])
                        i += 1
                    i += 1
                else:
                    text.append(char)
                    i += 1
            yield _Word("".join(text), min(i, n))


def _hey_invocations(command: str) -> Iterator[tuple[_Word, list[_Word]]]:
    """Each ``hey`` word in command position, with the words of its arguments."""
    at_start, hey, args = True, None, list[_Word]()
    for word in (*_words(command), None):
        if word is None:
            if hey is not None:
                yield hey, args
            at_start, hey, args = True, None, list[_Word]()
        elif at_start:
            if _ASSIGNMENT.match(word.text) or word.text in _TRANSPARENT:
                continue
            at_start = False
            hey = word if os.path.basename(word.text) == "hey" else None
        elif hey is not None:
            args.append(word)


def _needs_proxy(args: list[_Word]) -> bool:
    for word in args:
        if word.text in _PROXY_FLAGS or word.text.startswith(tuple(f"{flag}=" for flag in _PROXY_FLAGS)):
            return False  # the user chose a proxy
    urls = [word.text for word in args if "://" in word.text]
    # Mirrors no_proxy: hey aimed at a loopback address talks to it directly, not through the mesh.
    return not urls or urllib.parse.urlsplit(urls[-1]).hostname not in LOOPBACK


def with_hey_proxy(command: str, proxy: str) -> str:
    """``command`` with ``-x PROXY`` after each ``hey`` that has no ``-x`` and does not target loopback."""
    insert_at = [hey.end for hey, args in _hey_invocations(command) if _needs_proxy(args)]
    flag = f" -x {shlex.quote(proxy)}"
    for offset in reversed(insert_at):
        command = command[:offset] + flag + command[offset:]
    return command
