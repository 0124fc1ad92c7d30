"""AWS Signature Version 4 for one request (what the AWS SDKs do before every call), as an httpx Auth.

Kept to what CloudWatch's query API needs: a form-encoded POST signed with static credentials
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, optionally ``AWS_SESSION_TOKEN``).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import hmac
from collections.abc import Generator
from urllib.parse import quote

import httpx


@dataclasses.dataclass(frozen=True)
class AwsCredentials:
    access_key: str
    secret_key: str = dataclasses.field(repr=False)
    session_token: str | None = dataclasses.field(default=None, repr=False)


class SigV4(httpx.Auth):
    requires_request_body = True

    def __init__(self, credentials: AwsCredentials, region: str, service: str) -> None:
        self.credentials = credentials
        self.region = region
        self.service = service

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        sign(request, self.credentials, self.region, self.service, datetime.datetime.now(datetime.UTC))
        yield request


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(request: httpx.Request, creds: AwsCredentials, region: str, service: str, now: datetime.datetime) -> None:
    """Add ``X-Amz-Date``, ``X-Amz-Security-Token`` (with a session token) and ``Authorization`` headers."""
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    request.headers["X-Amz-Date"] = stamp
    if creds.session_token:
        request.headers["X-Amz-Security-Token"] = creds.session_token
    payload_hash = hashlib.sha256(request.content).hexdigest()
    headers = {"host": request.url.netloc.decode(), "x-amz-date": stamp}
    if creds.session_token:
        headers["x-amz-security-token"] = creds.session_token
    if "content-type" in request.headers:
        headers["content-type"] = request.headers["content-type"]
    names = sorted(headers)
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(request.url.params.multi_items())
    )
    canonical = "\n".join(
        [request.method, quote(request.url.path or "/", safe="/-_.~"), query,
         "".join(f"{n}:{headers[n].strip()}\n" for n in names), ";".join(names), payload_hash]
    )  # fmt: skip
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{creds.secret_key}".encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, SignedHeaders={';'.join(names)}, "
        f"Signature={signature}"
    )
