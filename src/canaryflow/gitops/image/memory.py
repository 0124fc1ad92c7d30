"""A Registry held in memory: tags by image, pushed by the test or tool that owns it, every scan recorded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from canaryflow.gitops.image.base import RegistryAuth, RegistryError, parse_image


class MemoryRegistry:
    """Images by their normalised name (``podinfo`` is ``docker.io/library/podinfo``), like a real registry."""

    def __init__(self, tags: Mapping[str, Iterable[str]] | None = None) -> None:
        self.tags: dict[str, list[str]] = {}
        #: The normalised images scanned, in order.
        self.scans: list[str] = []
        for image, listed in (tags or {}).items():
            for tag in listed:
                self.push(image, tag)

    def push(self, image: str, tag: str) -> None:
        """Add ``tag`` to ``image`` (created when missing); pushing a tag again changes nothing."""
        tags = self.tags.setdefault(str(parse_image(image)), [])
        if tag not in tags:
            tags.append(tag)

    async def list_tags(self, image: str, *, auth: RegistryAuth | None = None, insecure: bool = False) -> list[str]:
        name = parse_image(image)
        self.scans.append(str(name))
        if str(name) not in self.tags:
            raise RegistryError(f"scanning {name}: repository not found (no such image in memory)")
        return list(self.tags[str(name)])
