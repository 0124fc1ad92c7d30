"""Credentials: basic and bearer auth against git http-backend, and secrets kept out of argv, env and errors."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from canaryflow.gitops.source import GitAuth, GitSource, GitSpec, SourceError
from canaryflow.gitops.source.gitcmd import GitSession
from tests.gitops.gitserver import GitHttpServer, RepoDir
from tests.gitops.source.conftest import MANIFEST

PASSWORD = "s3cr3t-Passw0rd-4242"
TOKEN = "tok-0123456789abcdef-bearer"


@pytest.fixture
def basic_server(repos: RepoDir) -> Iterator[GitHttpServer]:
    repos.create("app", {"a.yaml": MANIFEST})
    with GitHttpServer(repos.root, username="flux", password=PASSWORD) as server:
        yield server


@pytest.fixture
def bearer_server(repos: RepoDir) -> Iterator[GitHttpServer]:
    repos.create("app", {"a.yaml": MANIFEST})
    with GitHttpServer(repos.root, token=TOKEN) as server:
        yield server


async def test_basic_auth_fetches(basic_server: GitHttpServer, source: GitSource) -> None:
    auth = GitAuth.from_secret({"username": b"flux", "password": PASSWORD.encode()})
    artifact = await source.fetch("ns/app", GitSpec(basic_server.url("app"), auth=auth))
    assert (artifact.path / "a.yaml").read_text() == MANIFEST
    assert ("GET", "/app.git/info/refs?service=git-upload-pack", "Basic") in basic_server.requests


async def test_bearer_token_fetches(bearer_server: GitHttpServer, source: GitSource) -> None:
    auth = GitAuth.from_secret({"bearerToken": TOKEN})
    artifact = await source.fetch("ns/app", GitSpec(bearer_server.url("app"), auth=auth))
    assert (artifact.path / "a.yaml").read_text() == MANIFEST
    assert {scheme for _, _, scheme in bearer_server.requests} == {"Bearer"}


@pytest.mark.parametrize(
    ("secret", "leaked"),
    [
        ({"username": "flux", "password": "wrong-" + PASSWORD}, "wrong-" + PASSWORD),
        ({}, None),
    ],
    ids=["wrong-password", "no-credentials"],
)
async def test_rejected_credentials_fail_without_showing_them(
    basic_server: GitHttpServer, source: GitSource, secret: dict[str, str], leaked: str | None
) -> None:
    with pytest.raises(SourceError) as error:
        await source.fetch("ns/app", GitSpec(basic_server.url("app"), auth=GitAuth.from_secret(secret), timeout=20))
    message = str(error.value)
    assert basic_server.url("app") in message
    assert "Authentication failed" in message or "could not read Username" in message
    if leaked:
        assert leaked not in message and PASSWORD not in message


async def test_wrong_bearer_token_fails_without_showing_it(bearer_server: GitHttpServer, source: GitSource) -> None:
    auth = GitAuth(bearer_token="nope-" + TOKEN)
    with pytest.raises(SourceError) as error:
        await source.fetch("ns/app", GitSpec(bearer_server.url("app"), auth=auth, timeout=20))
    assert TOKEN not in str(error.value)


def _descendants() -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, stack = [], [os.getpid()]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


@pytest.mark.parametrize("kind", ["basic", "bearer"])
async def test_no_credential_in_the_arguments_or_environment_of_running_git_processes(
    repos: RepoDir, source: GitSource, kind: str
) -> None:
    repos.create("app", {"a.yaml": MANIFEST})
    server_auth = {"username": "flux", "password": PASSWORD} if kind == "basic" else {"token": TOKEN}
    auth = GitAuth(username="flux", password=PASSWORD) if kind == "basic" else GitAuth(bearer_token=TOKEN)
    secret = PASSWORD if kind == "basic" else TOKEN
    with GitHttpServer(repos.root, **server_auth) as server:
        server.hold()  # git is parked mid-request: its processes are alive while we look at them
        fetch = asyncio.create_task(source.fetch("ns/app", GitSpec(server.url("app"), auth=auth)))
        assert await asyncio.to_thread(server.waiting.wait, 30)
        seen = []
        for pid in _descendants():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"git"):
                seen.append(cmdline.replace(b"\0", b" ").decode())
            assert secret.encode() not in cmdline, cmdline
            assert secret.encode() not in environ, cmdline
        server.release()
        artifact = await fetch
    assert any("ls-remote" in line for line in seen), seen  # we did look at the running git
    assert (artifact.path / "a.yaml").read_text() == MANIFEST


async def test_ssh_credentials_are_files_in_a_private_directory_removed_afterwards() -> None:
    # No sshd on this machine (checked with `which sshd`), so the SSH transport cannot run end to end here:
    # this checks what git is given. The key and host keys are files (0600) referenced by path from
    # GIT_SSH_COMMAND; the command verifies host keys strictly and never prompts.
    identity = b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAkeymaterial0123456789\n-----END OPENSSH PRIVATE KEY-----\n"
    known_hosts = b"git.example.test ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIhostkey\n"
    auth = GitAuth.from_secret({"identity": identity, "known_hosts": known_hosts})
    async with GitSession(auth, 10) as session:
        env = session.env
        private = Path(env["HOME"])
        command = shlex.split(env["GIT_SSH_COMMAND"])
        options = {command[i + 1] for i, arg in enumerate(command) if arg == "-o"}
        key_file = Path(command[command.index("-i") + 1])
        hosts_file = Path(next(o for o in options if o.startswith("UserKnownHostsFile=")).partition("=")[2])
        assert {"StrictHostKeyChecking=yes", "BatchMode=yes"} <= options
        assert key_file.read_bytes() == identity and hosts_file.read_bytes() == known_hosts
        assert key_file.parent == private == hosts_file.parent
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert {stat.S_IMODE(f.stat().st_mode) for f in (key_file, hosts_file)} == {0o600}
        assert not any(b"keymaterial" in value.encode() for value in env.values())
        assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert not private.exists()


async def test_ssh_to_a_host_that_is_not_listening_fails_with_a_scrubbed_error(source: GitSource) -> None:
    if shutil.which("ssh") is None:  # the client ships with git's dependencies here; keep the message clear if not
        pytest.fail("ssh client missing")
    identity = b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAkeymaterial0123456789\n-----END OPENSSH PRIVATE KEY-----\n"
    auth = GitAuth(identity=identity, known_hosts=b"")
    with pytest.raises(SourceError) as error:
        await source.fetch("ns/app", GitSpec("ssh://git@127.0.0.1:1/app.git", auth=auth, timeout=20))
    assert "keymaterial" not in str(error.value)
    assert "ssh://127.0.0.1:1/app.git" in str(error.value)


def test_gitauth_repr_hides_secrets() -> None:
    auth = GitAuth(username="flux", password=PASSWORD, bearer_token=None, identity=b"KEYDATA", known_hosts=b"h")
    assert PASSWORD not in repr(auth) and "KEYDATA" not in repr(auth) and PASSWORD not in str(auth)
    assert "flux" in repr(auth)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"password": "p"}, "'password' but no 'username'"),
        ({"identity": "k"}, "'identity' but no 'known_hosts'"),
        ({"username": "u", "password": "p", "bearerToken": "t"}, "choose basic or bearer"),
        ({"tls.crt": "c", "tls.key": "k"}, "client certificates"),
    ],
    ids=["password-alone", "identity-alone", "basic-and-bearer", "mtls"],
)
def test_secrets_git_cannot_use_are_refused(data: dict[str, str], message: str) -> None:
    with pytest.raises(SourceError, match=message):
        GitAuth.from_secret(data)


def test_secret_keys_map_to_fields() -> None:
    auth = GitAuth.from_secret({"username": b"u", "password": "p", "ca.crt": "CA", "unrelated": "x"})
    assert (auth.username, auth.password, auth.ca) == ("u", "p", b"CA")
