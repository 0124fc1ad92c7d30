"""Google Cloud Monitoring (Stackdriver): an MQL query over ``projects/<id>/timeSeries:query``.

As in Flagger: with a secretRef the secret must hold ``project`` and may hold ``serviceAccountKey`` (a service
account's JSON key); without the key, Application Default Credentials are used (``GOOGLE_APPLICATION_CREDENTIALS``,
else the metadata server's token). The value is the first value (``doubleValue``, or ``int64Value``) of the first
point of the first series; no series or no point means no values; unlike Flagger, several series are an error.
``is_online`` sends an empty query: an HTTP 400 (invalid argument) means the API answers, as in Flagger.
``spec.provider.address``, which Flagger ignores here, replaces ``https://monitoring.googleapis.com`` when set.

The OAuth2 token comes from google-auth's signer (the ``gcp`` extra) and is exchanged with httpx.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.metrics.rest import ProviderConfig, RestClient, number, one_series, online_if_answered

API = "https://monitoring.googleapis.com"
METADATA_TOKEN = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
SCOPE = "https://www.googleapis.com/auth/monitoring.read"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class StackdriverProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.api = config.checked(config.address or API)
        self.project: str | None = None
        key_text: str | None = None
        if config.template.spec.provider.secret_ref is not None:
            self.project = config.secret_key("project")
            key_text = config.secret_key("serviceAccountKey", required=False)
        if key_text is None and os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            with open(os.environ["GOOGLE_APPLICATION_CREDENTIALS"], encoding="utf-8") as file:
                key_text = file.read()
        self._key = _service_account(key_text, config.who) if key_text is not None else None
        self._rest = RestClient(config)
        self._token: tuple[str, float] | None = None

    @property
    def url(self) -> str:
        if not self.project:
            raise MetricError(f"{self._rest.who}: the secret has no 'project' key (a secretRef is required)")
        return f"{self.api}/v3/projects/{self.project}/timeSeries:query"

    async def _headers(self) -> dict[str, str]:
        if self._token is None or self._token[1] < time.time() + 60:
            self._token = await self._fetch_token()
        return {"Authorization": f"Bearer {self._token[0]}"}

    async def _fetch_token(self) -> tuple[str, float]:
        if self._key is None:
            body = await self._rest.json("GET", METADATA_TOKEN, headers={"Metadata-Flavor": "Google"})
        else:
            data = {"grant_type": JWT_GRANT, "assertion": _assertion(self._key)}
            body = await self._rest.json("POST", self._key["token_uri"], data=data)
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise self._rest.error("the token endpoint gave no access_token")
        return body["access_token"], time.time() + float(body.get("expires_in", 300))

    async def query(self, expr: str) -> float:
        url = self.url
        body = await self._rest.json("POST", url, expr, json={"query": expr}, headers=await self._headers())
        who = self._rest.who
        series = one_series(body.get("timeSeriesData") or [] if isinstance(body, dict) else [], who, expr)
        points = series.get("pointData") if isinstance(series, dict) else None
        values = points[0].get("values") if points and isinstance(points[0], dict) else None
        value = _typed(values[0], who) if values else None
        if value is None:
            raise NoValuesFound(f"{who}: no values found for query {expr}")
        return value

    async def is_online(self) -> bool:
        request = self._rest.build("POST", self.url, json={"query": ""}, headers=await self._headers())
        return await online_if_answered(self._rest.send(request))

    async def close(self) -> None:
        await self._rest.close()


def _typed(value: Any, who: str) -> float | None:
    if not isinstance(value, dict):
        return None
    for kind in ("doubleValue", "int64Value"):
        if kind in value:
            return number(value[kind], who)
    if "boolValue" in value:
        return 1.0 if value["boolValue"] else 0.0
    return None


def _service_account(text: str, who: str) -> dict[str, str]:
    try:
        key = json.loads(text)
    except ValueError:
        raise MetricError(f"{who}: serviceAccountKey is not JSON (a service account key file)") from None
    missing = [k for k in ("client_email", "private_key", "token_uri") if not isinstance(key.get(k), str)]
    if missing:
        raise MetricError(f"{who}: serviceAccountKey lacks {', '.join(missing)}")
    return {k: key[k] for k in ("client_email", "private_key", "token_uri", "private_key_id") if k in key}


def _assertion(key: dict[str, str]) -> str:
    """A signed JWT asking for a monitoring token (the OAuth2 JWT bearer grant of service accounts)."""
    try:
        from google.auth import crypt, jwt  # optional: the gcp extra
    except ImportError:
        raise MetricError(
            "stackdriver needs google-auth to sign its token request: pip install canaryflow[gcp]"
        ) from None
    now = int(time.time())
    claims = {"iss": key["client_email"], "scope": SCOPE, "aud": key["token_uri"], "iat": now, "exp": now + 3600}
    signer = crypt.RSASigner.from_service_account_info(key)  # type: ignore[no-untyped-call]
    token: bytes = jwt.encode(signer, claims)  # type: ignore[no-untyped-call]
    return token.decode()
