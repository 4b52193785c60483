"""Who may read: whoever shows the API token, once at sign-in or on every request.

A browser signs in once with the token and gets a session cookie (HttpOnly, SameSite=Strict)
that holds a keyed digest of the token, never the token itself. Scripts and tests send
`Authorization: Bearer <token>`; the pages and the API accept either. Without a configured
token everything is open, as before. `/metrics` and the health checks never ask.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

log = logging.getLogger("vardgaranti.api")

SESSION_COOKIE = "vardgaranti_session"
SESSION_SECONDS = 12 * 3600  # one working day; then sign in again
# at module level so FastAPI finds it and /docs offers the bearer scheme
BEARER = HTTPBearer(auto_error=False)


class SignInRequired(Exception):
    """A page asked for without a valid token or session: the browser goes to sign in."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Access:
    def __init__(self, token: str | None) -> None:
        self.token = token

    @property
    def open(self) -> bool:
        return self.token is None

    def _session_value(self) -> str:
        assert self.token is not None
        return hmac.new(self.token.encode(), b"vardgaranti session", hashlib.sha256).hexdigest()

    def token_ok(self, given: str) -> bool:
        """Constant-time comparison of the bytes (a non-ASCII guess is simply wrong)."""
        return self.token is not None and hmac.compare_digest(
            given.encode(), self.token.encode()
        )

    def _why_refused(self, request: Request, cred: HTTPAuthorizationCredentials | None) -> str:
        """Empty when the request may read; else what was wrong, for the log (no secrets)."""
        if self.token is None:
            return ""
        if cred is not None:
            return "" if self.token_ok(cred.credentials) else "wrong bearer token"
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie is not None:
            ok = hmac.compare_digest(cookie.encode(), self._session_value().encode())
            return "" if ok else "stale session cookie"
        return "no bearer token"

    def api_guard(self) -> Callable[..., None]:
        """Dependency of the API routes: 401 with `WWW-Authenticate: Bearer`."""

        def guard(
            request: Request,
            cred: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
        ) -> None:
            why = self._why_refused(request, cred)
            if why:
                log.warning("refused %s %s: %s", request.method, request.url.path, why)
                raise HTTPException(401, "a valid bearer token is required",
                                    headers={"WWW-Authenticate": "Bearer"})

        return guard

    def page_guard(self) -> Callable[..., None]:
        """Dependency of the pages: a browser without a session is sent to sign in."""

        def guard(
            request: Request,
            cred: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
        ) -> None:
            if self._why_refused(request, cred):
                query = f"?{request.url.query}" if request.url.query else ""
                raise SignInRequired(request.url.path + query)

        return guard

    def start_session(self, request: Request, response: Response) -> None:
        response.set_cookie(
            SESSION_COOKIE, self._session_value(), max_age=SESSION_SECONDS, path="/",
            httponly=True, samesite="strict", secure=request.url.scheme == "https",
        )

    @staticmethod
    def end_session(response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def local_path(target: str | None) -> str:
    """Where to go after sign-in: only a path on this server (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
