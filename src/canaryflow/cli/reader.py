"""Where ``get``, ``describe`` and ``events`` read from: the running runtime's API, else the state it left on disk.

A person who ran ``canaryflow down`` (or whose runtime crashed) can still see what happened: the same listings,
read from the state directory's SQLite file, with a note on stderr saying so.
"""

from __future__ import annotations

import asyncio
from typing import Any

from canaryflow.cli.client import CliError, Runtime
from canaryflow.local import gitops_api, snapshot


class Reader:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.disk: snapshot.DiskState | None = None
        if not runtime.running:
            try:
                self.disk = snapshot.DiskState(runtime.dirs)
            except FileNotFoundError:
                raise CliError(
                    f"no runtime is running with state directory {runtime.dirs.root}, and it holds no state: "
                    "run `canaryflow up`"
                ) from None

    @property
    def note(self) -> str:
        """What to tell the user about where the answer comes from ("" for a running runtime)."""
        if self.disk is None:
            return ""
        return f"no runtime is running: showing the state saved in {self.runtime.dirs.db}"

    def objects(self, word: str, namespace: str | None, name: str | None = None) -> list[dict[str, Any]]:
        """The objects of a kind (``canaries``, ``deploy``…), in one namespace or all; one named object."""
        if self.disk is None:
            params = {k: v for k, v in (("namespace", namespace), ("name", name)) if v}
            return list(self.runtime.json("GET", f"/objects/{word}", params=params)["items"])
        kind = snapshot.KINDS.get(word)
        if kind is None:
            raise CliError(snapshot.unknown_kind(word, snapshot.KINDS))
        items = asyncio.run(self.disk.objects(kind, namespace))
        if name is not None:
            items = [i for i in items if i["metadata"]["name"] == name]
            if not items:
                raise CliError(snapshot.not_found(kind, namespace or "", name))
        return items

    def events(self, canary: str | None, namespace: str | None, limit: int = 100) -> list[dict[str, Any]]:
        if self.disk is None:
            params: dict[str, Any] = {"limit": limit}
            params.update({k: v for k, v in (("canary", canary), ("namespace", namespace)) if v})
            return list(self.runtime.json("GET", "/events", params=params))
        return asyncio.run(self.disk.events(canary, namespace, limit))

    def gitops(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        if self.disk is None:
            params = {"namespace": namespace} if namespace else {}
            return list(self.runtime.json("GET", f"/gitops/{plural}", params=params)["items"])
        return self.disk.gitops(gitops_api.KINDS[plural], namespace)

    def close(self) -> None:
        if self.disk is not None:
            self.disk.close()
