"""A real OCI registry on 127.0.0.1 for tests: Debian's ``docker-registry`` (distribution 2.8), fed by ``skopeo``.

    with Registry(tmp_path) as reg:                                   # anonymous
    with Registry(tmp_path, users={"u": "p"}) as reg:                 # htpasswd basic auth (bcrypt)
    with TokenServer(tmp_path, users={"u": "p"}) as ts, Registry(tmp_path, token=ts) as reg:   # bearer tokens
        reg.push("app", "1.0.0", "1.1.0")     # tags pushed with skopeo from a hand-built OCI layout
        reg.host                              # "127.0.0.1:<port>" (an image is f"{reg.host}/app")
        ts.requests                           # [(scope, service, username or "")] the token server saw

Images are built by hand (an empty layer, a config, a manifest, ``index.json``) so nothing is downloaded.
Token auth is the registry's own ``auth.token`` mode: the token server signs RS256 JWTs with a key and
self-signed certificate made by ``openssl``, the registry trusts that certificate (``rootcertbundle``) and
verifies each token's signature, issuer, audience, expiry and granted actions.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.processes import free_port, stop

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LC_ALL": "C"}


def _bcrypt(password: str) -> str:
    """A ``$2b$`` bcrypt hash from the C library's crypt(3) (libxcrypt), which htpasswd files accept."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt as _crypt

        hashed = _crypt.crypt(password, _crypt.mksalt(_crypt.METHOD_BLOWFISH, rounds=1 << 4))
    if not hashed or not hashed.startswith("$2"):
        raise RuntimeError("the C library's crypt(3) cannot make bcrypt hashes")
    return hashed


def build_layout(root: Path, tags: list[str]) -> Path:
    """An OCI image layout at ``root`` holding one tiny image under every tag in ``tags``."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def blob(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w"):
        pass  # an empty layer: just the end-of-archive blocks
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(buffer.getvalue())}
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    }
    config_desc = {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(json.dumps(config).encode())}
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer],
    }
    manifest_desc = {"mediaType": manifest["mediaType"], **blob(json.dumps(manifest).encode())}
    index = {
        "schemaVersion": 2,
        "manifests": [{**manifest_desc, "annotations": {"org.opencontainers.image.ref.name": t}} for t in tags],
    }
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return root


def _wait_http(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=0.5)
            return
        except urllib.error.HTTPError:
            return  # 401 is an answer too: the registry is up
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no answer from {url}")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A Docker token server (``GET /token?service=..&scope=..``) issuing RS256 JWTs the registry trusts.

    Users with a valid password get the actions they ask for; anonymous callers get ``pull`` only when
    ``anonymous_pull`` is set (else a token granting nothing); a wrong password gets 401.
    """

    service = "canaryflow-test-registry"
    issuer = "canaryflow-test-issuer"

    def __init__(self, workdir: Path, users: Mapping[str, str] | None = None, *, anonymous_pull: bool = False) -> None:
        self.dir = workdir / "token-server"
        self.users = dict(users or {})
        self.anonymous_pull = anonymous_pull
        self.requests: list[tuple[str, str, str]] = []
        self.port = 0
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def cert(self) -> Path:
        return self.dir / "cert.pem"

    def _sign(self, payload: bytes) -> bytes:
        done = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.dir / "key.pem")],
            input=payload,
            capture_output=True,
            env=ENV,
            check=True,
        )
        return done.stdout

    def issue(self, subject: str, access: list[dict[str, object]]) -> str:
        der = subprocess.run(
            ["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], capture_output=True, env=ENV, check=True
        ).stdout
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 600,
            "nbf": now - 60,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}".encode()
        return f"{signing_input.decode()}.{_b64url(self._sign(signing_input))}"

    def _grant(self, scope: str, user: str | None) -> list[dict[str, object]]:
        granted: list[dict[str, object]] = []
        for item in scope.split(" "):
            parts = item.split(":")
            if len(parts) != 3:
                continue
            kind, name, actions = parts
            wanted = actions.split(",")
            allowed = wanted if user else (["pull"] if self.anonymous_pull and "pull" in wanted else [])
            if allowed:
                granted.append({"type": kind, "name": name, "actions": allowed})
        return granted

    def __enter__(self) -> Self:
        self.dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=issuer"),
                *("-keyout", str(self.dir / "key.pem"), "-out", str(self.cert)),
            ],
            capture_output=True,
            env=ENV,
            check=True,
        )
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if owner.users.get(name) != password:
                        owner.requests.append((query.get("scope", ""), query.get("service", ""), name))
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = name
                owner.requests.append((query.get("scope", ""), query.get("service", ""), user or ""))
                token = owner.issue(user or "", owner._grant(query.get("scope", ""), user))
                body = json.dumps({"token": token, "access_token": token, "expires_in": 600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class Registry:
    """``docker-registry`` on 127.0.0.1 with filesystem storage under ``workdir``."""

    def __init__(
        self, workdir: Path, *, users: Mapping[str, str] | None = None, token: TokenServer | None = None
    ) -> None:
        if users and token:
            raise ValueError("choose htpasswd users or a token server, not both")
        self.dir = workdir / f"registry-{uuid.uuid4().hex[:8]}"
        self.users = dict(users or {})
        self.token = token
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self) -> str:
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.dir / 'data'}",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            f"  secret: {uuid.uuid4().hex}",
        ]
        if self.users:
            htpasswd = self.dir / "htpasswd"
            htpasswd.write_text("".join(f"{u}:{_bcrypt(p)}\n" for u, p in self.users.items()))
            lines += ["auth:", "  htpasswd:", "    realm: canaryflow-test", f"    path: {htpasswd}"]
        if self.token is not None:
            lines += [
                "auth:",
                "  token:",
                f"    realm: {self.token.realm}",
                f"    service: {self.token.service}",
                f"    issuer: {self.token.issuer}",
                f"    rootcertbundle: {self.token.cert}",
            ]
        return "\n".join(lines) + "\n"

    def __enter__(self) -> Self:
        self.dir.mkdir(parents=True)
        self.port = free_port()
        config = self.dir / "config.yml"
        config.write_text(self._config())
        self._process = subprocess.Popen(
            ["docker-registry", "serve", str(config)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_http(f"http://{self.host}/v2/", self._process)
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        stop(self._process)

    def push(self, repository: str, *tags: str) -> None:
        """Push a tiny image to ``repository`` under each tag, with skopeo (credentials of the first user)."""
        layout = build_layout(self.dir / f"layout-{uuid.uuid4().hex[:8]}", list(tags))
        creds: list[str] = []
        if self.users:
            user, password = next(iter(self.users.items()))
            creds = ["--dest-creds", f"{user}:{password}"]
        elif self.token is not None and self.token.users:
            user, password = next(iter(self.token.users.items()))
            creds = ["--dest-creds", f"{user}:{password}"]
        env = {**ENV, "HOME": str(self.dir)}
        for tag in tags:
            done = subprocess.run(
                [
                    *("skopeo", "copy", "--quiet", "--dest-tls-verify=false", *creds),
                    *(f"oci:{layout}:{tag}", f"docker://{self.host}/{repository}:{tag}"),
                ],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            if done.returncode != 0:
                raise RuntimeError(f"skopeo copy {repository}:{tag}: {done.stderr.strip()}")
