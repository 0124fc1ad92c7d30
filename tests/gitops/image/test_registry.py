"""Tag scanning against Debian's docker-registry (distribution 2.8) on 127.0.0.1, images pushed with skopeo."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from canaryflow.gitops.image.auth import Challenge, parse_challenge
from canaryflow.gitops.image.base import RegistryAuth, RegistryError, parse_image
from canaryflow.gitops.image.registry import DEFAULT_EXCLUSIONS, exclude, list_tags
from tests.gitops.registry import Registry, TokenServer

TAGS = ["1.0.0", "1.1.0", "1.2.0", "2.0.0", "latest"]


class Recording(httpx.AsyncBaseTransport):
    """The real HTTP transport, remembering each request (method, path, query, Authorization scheme)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.seen: list[tuple[str, str, str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scheme = request.headers.get("Authorization", "").partition(" ")[0]
        self.seen.append((request.method, request.url.path, request.url.query.decode(), scheme))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="module")
def anonymous(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with Registry(tmp_path_factory.mktemp("anon")) as registry:
        registry.push("team/app", *TAGS, "sha256-abc.sig")
        yield registry


async def test_lists_every_tag_of_a_real_registry(anonymous: Registry) -> None:
    transport = Recording()
    tags = await list_tags(f"{anonymous.host}/team/app", page_size=2, transport=transport)
    assert sorted(tags) == sorted([*TAGS, "sha256-abc.sig"])
    # distribution 2.8 ignores "n" for tag lists (it pages only the catalog), so one request answers all
    assert transport.seen == [("GET", "/v2/team/app/tags/list", "n=2", "")]


def paging_registry(tags: list[str], seen: list[str]) -> httpx.MockTransport:
    """A registry that pages ``tags/list`` as the OCI distribution spec says (``n``, ``last``, ``Link``)."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.query.decode())
        n = int(request.url.params.get("n", "1000"))
        last = request.url.params.get("last")
        ordered = sorted(tags)
        rest = [t for t in ordered if last is None or t > last]
        page = rest[:n]
        headers = {}
        if len(rest) > n:
            headers["Link"] = f'</v2/app/tags/list?n={n}&last={page[-1]}>; rel="next"'
        return httpx.Response(200, json={"name": "app", "tags": page}, headers=headers)

    return httpx.MockTransport(handler)


async def test_follows_link_headers_across_pages() -> None:
    seen: list[str] = []
    tags = [f"1.0.{i}" for i in range(7)]
    assert await list_tags("registry.test/app", page_size=2, transport=paging_registry(tags, seen)) == tags
    assert seen == ["n=2", "n=2&last=1.0.1", "n=2&last=1.0.3", "n=2&last=1.0.5"]


async def test_a_link_loop_is_an_error_not_a_hang() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"tags": ["a"]}, headers={"Link": '</v2/app/tags/list?n=1>; rel="next"'})

    with pytest.raises(RegistryError, match="pagination does not end"):
        await list_tags("registry.test/app", transport=httpx.MockTransport(handler))


async def test_exclusion_list_drops_signature_tags_by_default(anonymous: Registry) -> None:
    tags = await list_tags(f"{anonymous.host}/team/app", exclusions=DEFAULT_EXCLUSIONS)
    assert sorted(tags) == sorted(TAGS)
    assert exclude(tags, [r"^latest$", r"^1\."]) == [t for t in tags if t in ("2.0.0",)]


async def test_unknown_repository_is_a_clear_error(anonymous: Registry) -> None:
    with pytest.raises(RegistryError, match=r"team/missing: repository not found \(NAME_UNKNOWN"):
        await list_tags(f"{anonymous.host}/team/missing")


async def test_unreachable_registry_is_a_clear_error(anonymous: Registry) -> None:
    with pytest.raises(RegistryError, match=r"cannot reach http://127\.0\.0\.1:1"):
        await list_tags("127.0.0.1:1/team/app")


async def test_basic_auth_with_htpasswd(tmp_path: Path) -> None:
    with Registry(tmp_path, users={"robot": "s3cret-pw"}) as registry:
        registry.push("app", "1.0.0", "1.0.1")
        image = f"{registry.host}/app"
        assert sorted(await list_tags(image, auth=RegistryAuth("robot", "s3cret-pw"))) == ["1.0.0", "1.0.1"]
        with pytest.raises(RegistryError, match=f"authentication failed for {registry.host}/app") as wrong:
            await list_tags(image, auth=RegistryAuth("robot", "guess-pw"))
        assert "guess-pw" not in str(wrong.value) and "robot" not in str(wrong.value)
        with pytest.raises(RegistryError, match="requires credentials"):
            await list_tags(image)


async def test_bearer_token_flow_with_the_registrys_token_auth(tmp_path: Path) -> None:
    with TokenServer(tmp_path, users={"ci": "tok-pw"}) as tokens, Registry(tmp_path, token=tokens) as registry:
        registry.push("org/app", "3.0.0", "3.1.0")
        tokens.requests.clear()
        transport = Recording()
        tags = await list_tags(f"{registry.host}/org/app", auth=RegistryAuth("ci", "tok-pw"), transport=transport)
        assert sorted(tags) == ["3.0.0", "3.1.0"]
        # challenge -> token server (scope and service from the challenge, basic credentials) -> retry with Bearer
        assert tokens.requests == [("repository:org/app:pull", tokens.service, "ci")]
        assert [s[3] for s in transport.seen] == ["", "Basic", "Bearer"]

        with pytest.raises(RegistryError, match="token server refused the credentials") as wrong:
            await list_tags(f"{registry.host}/org/app", auth=RegistryAuth("ci", "nope-pw"))
        assert "nope-pw" not in str(wrong.value)
        # anonymous: a token is issued but grants nothing, so the registry still says 401
        with pytest.raises(RegistryError, match="authentication failed"):
            await list_tags(f"{registry.host}/org/app")


async def test_anonymous_bearer_token_for_public_pulls(tmp_path: Path) -> None:
    with (
        TokenServer(tmp_path, users={"ci": "pw"}, anonymous_pull=True) as tokens,
        Registry(tmp_path, token=tokens) as registry,
    ):
        registry.push("library/podinfo", "6.1.0")
        tokens.requests.clear()
        assert await list_tags(f"{registry.host}/library/podinfo") == ["6.1.0"]
        assert tokens.requests == [("repository:library/podinfo:pull", tokens.service, "")]


@pytest.mark.parametrize(
    ("image", "registry", "repository", "api_host"),
    [
        ("podinfo", "docker.io", "library/podinfo", "registry-1.docker.io"),
        ("stefanprodan/podinfo", "docker.io", "stefanprodan/podinfo", "registry-1.docker.io"),
        ("docker.io/nginx", "docker.io", "library/nginx", "registry-1.docker.io"),
        ("index.docker.io/library/nginx", "docker.io", "library/nginx", "registry-1.docker.io"),
        ("ghcr.io/stefanprodan/podinfo", "ghcr.io", "stefanprodan/podinfo", "ghcr.io"),
        ("localhost/app", "localhost", "app", "localhost"),
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000", "team/app", "127.0.0.1:5000"),
    ],
)
def test_image_names_are_normalised_like_docker(image: str, registry: str, repository: str, api_host: str) -> None:
    name = parse_image(image)
    assert (name.registry, name.repository, name.api_host) == (registry, repository, api_host)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("https://ghcr.io/org/app", "no scheme"),
        ("ghcr.io/org/app:1.0.0", "may not carry a tag"),
        ("ghcr.io/org/app@sha256:abc", "may not carry a digest"),
        ("ghcr.io/Org/app", "'Org' is not a valid repository path component"),
    ],
)
def test_invalid_image_names(image: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        parse_image(image)


async def test_public_hosts_use_https_and_loopback_uses_http() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"name": "x", "tags": ["1"]})

    transport = httpx.MockTransport(handler)
    await list_tags("ghcr.io/org/app", transport=transport)
    await list_tags("podinfo", transport=transport)
    await list_tags("localhost:5000/app", transport=transport)
    await list_tags("registry.internal:5000/app", insecure=True, transport=transport)
    assert [u.split("?")[0] for u in seen] == [
        "https://ghcr.io/v2/org/app/tags/list",
        "https://registry-1.docker.io/v2/library/podinfo/tags/list",
        "http://localhost:5000/v2/app/tags/list",
        "http://registry.internal:5000/v2/app/tags/list",
    ]


def test_credentials_from_a_dockerconfigjson_secret() -> None:
    config = {
        "auths": {
            "ghcr.io": {"auth": base64.b64encode(b"bot:ghp-token").decode()},
            "https://index.docker.io/v1/": {"username": "hubuser", "password": "hubpass"},
        }
    }
    secret = {".dockerconfigjson": json.dumps(config)}
    assert RegistryAuth.from_secret(secret, "ghcr.io/org/app") == RegistryAuth("bot", "ghp-token")
    assert RegistryAuth.from_secret(secret, "nginx") == RegistryAuth("hubuser", "hubpass")
    assert RegistryAuth.from_secret(secret, "quay.io/org/app") is None
    assert "ghp-token" not in repr(RegistryAuth.from_secret(secret, "ghcr.io/org/app"))
    with pytest.raises(RegistryError, match=r"no '\.dockerconfigjson' key"):
        RegistryAuth.from_secret({"username": "x"}, "ghcr.io/org/app")


def test_bearer_challenges_are_parsed_with_quoted_commas() -> None:
    header = 'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'
    challenge = parse_challenge(header)
    assert challenge is not None and challenge.scheme == "bearer"
    assert dict(challenge.params) == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
    }
    assert parse_challenge('Basic realm="Registry Realm"') == Challenge("basic", {"realm": "Registry Realm"})


async def test_a_preset_token_is_sent_without_a_challenge() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        return httpx.Response(200, json={"tags": ["1.0.0"]})

    tags = await list_tags(
        "ghcr.io/org/app", auth=RegistryAuth(token="ghs_abc"), transport=httpx.MockTransport(handler)
    )
    assert tags == ["1.0.0"] and seen == ["Bearer ghs_abc"]
