"""Who may act: a token given when the runtime starts; without one the dashboard is read-only.

A browser logs in once with the token (``POST /login``) and gets a random session in an HttpOnly,
SameSite=Strict cookie; each form carries a CSRF token bound to that session, and a state-changing request whose
Origin is not the dashboard's own is refused, so another site cannot act through a logged-in browser. Scripts
may send ``Authorization: Bearer <token>`` instead (no cookie, so nothing for another site to ride on).

Answers: 403 when no token was configured (read-only), 401 when one is needed and was not given, 403 for a
failed CSRF or Origin check.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets

from starlette.requests import Request

COOKIE = "canaryflow_session"


@dataclasses.dataclass(frozen=True, slots=True)
class Denied:
    status: int
    reason: str


class Guard:
    def __init__(self, token: str | None) -> None:
        self.token = token or None
        self._secret = secrets.token_bytes(32)
        self._sessions: set[str] = set()

    @property
    def read_only(self) -> bool:
        return self.token is None

    def login(self, given: str) -> str | None:
        """A new session for the right token, else None."""
        if self.token is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            return None
        session = secrets.token_urlsafe(32)
        self._sessions.add(session)
        return session

    def logout(self, request: Request) -> None:
        self._sessions.discard(request.cookies.get(COOKIE, ""))

    def logged_in(self, request: Request) -> bool:
        return request.cookies.get(COOKIE, "") in self._sessions

    def csrf(self, request: Request) -> str:
        """The CSRF token of this request's session ("" when it has none)."""
        session = request.cookies.get(COOKIE, "")
        if session not in self._sessions:
            return ""
        return hmac.new(self._secret, session.encode(), hashlib.sha256).hexdigest()

    def check(self, request: Request, form_csrf: str | None) -> Denied | None:
        """None when ``request`` may change state, else why not."""
        if self.token is None:
            return Denied(403, "the dashboard is read-only: start the runtime with --dashboard-token to allow actions")
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            if hmac.compare_digest(bearer[7:].strip().encode(), self.token.encode()):
                return None
            return Denied(401, "wrong token")
        if not self.logged_in(request):
            return Denied(401, "log in with the dashboard token first")
        if not same_origin(request):
            return Denied(403, "cross-site request refused")
        if not form_csrf or not hmac.compare_digest(form_csrf.encode(), self.csrf(request).encode()):
            return Denied(403, "missing or wrong CSRF token: reload the page and try again")
        return None


def same_origin(request: Request) -> bool:
    """Origin (or, without it, Referer) names this dashboard; a request with neither is a non-browser client."""
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == own
    referer = request.headers.get("referer")
    return referer is None or referer == own or referer.startswith(own + "/")
