"""Live updates: a page's server-sent-event stream sends a fragment again when the canary changes."""

from __future__ import annotations

import json

import httpx

from canaryflow.dashboard import app as dashboard_app
from canaryflow.dashboard.memory import MemoryBackend
from tests.dashboard.test_pages import canary


async def test_the_list_stream_sends_new_rows_when_a_canary_advances() -> None:
    backend = MemoryBackend([canary()])
    settings = dashboard_app.Settings("127.0.0.1:0", None)
    rows: list[str] = []
    async with (
        dashboard_app.serve(backend, settings) as port,
        httpx.AsyncClient(trust_env=False) as client,
        client.stream("GET", f"http://127.0.0.1:{port}/stream", timeout=10) as stream,
    ):
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                rows.append(json.loads(line[6:])["rows"])
                if len(rows) == 1:
                    backend.put(canary(status={"phase": "Progressing", "canaryWeight": 45}))
                else:
                    break
    assert '<td class="weight">20%</td>' in rows[0]
    assert '<td class="weight">45%</td>' in rows[1]
