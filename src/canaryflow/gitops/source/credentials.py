"""Hand credentials to git without ever putting them in process arguments, environment variables or messages.

Every secret is written to a file (mode 0600) in a private directory (mode 0700) that exists only while one
git session runs; git is pointed at those files by *paths*:

- basic auth: ``GIT_ASKPASS`` names a small script in that directory; git runs it with the prompt
  ("Username for ..."/"Password for ...") and it prints the matching file. Nothing secret is in its argv or env;
- bearer token: ``http.extraHeader`` in a private global git config (``GIT_CONFIG_GLOBAL``), not ``-c``;
- SSH: ``GIT_SSH_COMMAND`` runs ``ssh -i <identity file> -o UserKnownHostsFile=<known_hosts file>`` with
  ``StrictHostKeyChecking=yes`` and ``BatchMode=yes`` (no prompts, unknown hosts refused);
- CA bundle: ``GIT_SSL_CAINFO`` names the written bundle.

The user's and the system's git configuration never apply (``HOME``, ``XDG_CONFIG_HOME``, ``GIT_CONFIG_NOSYSTEM``),
so no credential helper can store or leak anything, and ``GIT_TERMINAL_PROMPT=0`` makes a missing credential a
failure instead of a hang. :func:`scrub` removes URL userinfo and every secret value from text shown to users.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

from canaryflow.gitops.source.base import GitAuth, SourceError

_ASKPASS = """#!/bin/sh
# git runs this with its prompt as the only argument; the answer is read from a private file beside it.
case "$1" in
  Username*) exec cat "$(dirname "$0")/username" ;;
  *) exec cat "$(dirname "$0")/password" ;;
esac
"""
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


def check_url(url: str) -> None:
    """Refuse URLs git cannot use safely: credentials in a URL would end up in argv and in error messages."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ssh", "git", "file"):
        raise SourceError(f"url {scrub(url)!r}: unsupported scheme {parts.scheme!r} (use http, https, ssh, git, file)")
    if parts.password is not None:
        raise SourceError(f"url {scrub(url)!r}: credentials in the URL are not allowed; use spec.secretRef")


def environment(auth: GitAuth | None, private: Path) -> dict[str, str]:
    """The environment for git processes of one session; secrets are written under ``private`` (mode 0700)."""
    private.chmod(0o700)
    config = private / "gitconfig"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(private),
        "XDG_CONFIG_HOME": str(private),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(config),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "LC_ALL": "C",
        "GIT_SSH_COMMAND": _ssh_command(auth, private),
    }
    lines = ["[protocol]", "\tversion = 2"]
    if auth is not None:
        if auth.username is not None:
            _write(private / "username", auth.username.encode())
            _write(private / "password", (auth.password or "").encode())
            _write(private / "askpass", _ASKPASS.encode(), mode=0o700)
            env["GIT_ASKPASS"] = str(private / "askpass")
        if auth.bearer_token is not None:
            lines += ["[http]", f"\textraHeader = Authorization: Bearer {_config_value(auth.bearer_token)}"]
        if auth.ca is not None:
            _write(private / "ca.crt", auth.ca)
            env["GIT_SSL_CAINFO"] = str(private / "ca.crt")
    _write(config, ("\n".join(lines) + "\n").encode())
    return env


def _ssh_command(auth: GitAuth | None, private: Path) -> str:
    known_hosts = private / "known_hosts"
    _write(known_hosts, auth.known_hosts if auth and auth.known_hosts else b"")
    options = [
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "IdentitiesOnly=yes",
    ]
    if auth is not None and auth.identity is not None:
        identity = auth.identity if auth.identity.endswith(b"\n") else auth.identity + b"\n"
        _write(private / "identity", identity)
        options += ["-i", str(private / "identity")]
    return shlex.join(options)


def _config_value(value: str) -> str:
    if any(c in value for c in "\n\r\0"):
        raise SourceError("secret 'bearerToken' contains a line break")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write(path: Path, content: bytes, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(content)
    path.chmod(mode)


def scrub(text: str, auth: GitAuth | None = None) -> str:
    """``text`` with URL userinfo removed and every secret value of ``auth`` replaced by ``***``."""
    text = _USERINFO.sub(r"\g<scheme>", text)
    if auth is not None:
        for secret in auth.secrets():
            text = text.replace(secret, "***")
            for line in secret.splitlines():
                if len(line.strip()) >= 8:
                    text = text.replace(line.strip(), "***")
    return text
