"""Small HTTP/1.1 servers and clients on loopback for data-plane tests.

An ``Upstream`` answers every request with its own name (``/status/500`` answers 500) and records what it saw,
so tests count at the workloads where each request really went. ``ProxyConnection`` is one keep-alive TCP
connection to a proxy listener, so a test knows its requests share a connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re

_STATUS = re.compile(r"/status/(\d{3})")
_REASONS = {200: "OK", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}


@dataclasses.dataclass(frozen=True)
class Seen:
    path: str
    host: str
    headers: dict[str, str]

    @property
    def shadow(self) -> bool:
        """Envoy sends mirrored copies with ``-shadow`` appended to the host."""
        return self.host.split(":")[0].endswith("-shadow")


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: str
    headers: dict[str, str]


async def read_message(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes] | None:
    """One HTTP/1.1 message: its first line, its headers (lower-case names) and its body."""
    first = await reader.readline()
    if not first:
        return None
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return first.decode("latin-1").strip(), headers, body


class Upstream:
    """A workload process stand-in listening on 127.0.0.1."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[Seen] = []
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def served(self) -> int:
        """Requests answered to clients (mirrored copies not counted)."""
        return sum(1 for s in self.seen if not s.shadow)

    def shadows(self) -> int:
        return sum(1 for s in self.seen if s.shadow)

    async def start(self) -> Upstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (message := await read_message(reader)) is not None:
                first, headers, _ = message
                path = first.split()[1]
                self.seen.append(Seen(path, headers.get("host", ""), headers))
                match = _STATUS.search(path)
                status = int(match.group(1)) if match else 200
                body = self.name.encode()
                head = f"HTTP/1.1 {status} {_REASONS.get(status, 'X')}\r\ncontent-length: {len(body)}\r\n"
                writer.write(f"{head}x-upstream: {self.name}\r\n\r\n".encode() + body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


class ProxyConnection:
    """One keep-alive connection to an HTTP proxy listener, sending absolute-form requests."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def __aenter__(self) -> ProxyConnection:
        self._streams = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._streams is not None:
            self._streams[1].close()

    async def get(self, url: str, headers: dict[str, str] | None = None) -> Answer:
        assert self._streams is not None, "use ProxyConnection as an async context manager"
        reader, writer = self._streams
        host = url.split("/")[2]
        lines = [f"GET {url} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        message = await asyncio.wait_for(read_message(reader), 10)
        assert message is not None, "the proxy closed the connection"
        first, response_headers, body = message
        return Answer(int(first.split()[1]), body.decode(), response_headers)
