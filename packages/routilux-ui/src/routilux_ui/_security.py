"""
Who may use the page: one ASGI middleware for the host, the tokens and read-only mode.

It checks the host a request names, the access token, the CSRF token of POSTs and read-only
mode, and adds the security headers.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send


__all__ = ["CSRF_HEADER", "TOKEN_COOKIE", "Guard", "is_loopback"]

TOKEN_COOKIE = "routilux_ui_token"
"""The cookie a browser keeps the access token in, once it opened the page's ``?token=`` URL."""

CSRF_HEADER = "x-csrf-token"
"""The header the pages send their CSRF token in."""

_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

_HEADERS: list[tuple[bytes, bytes]] = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
        b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        b"form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # The token may be in a page's address: never send it to another site.
    (b"referrer-policy", b"no-referrer"),
]


def is_loopback(host: str) -> bool:
    """
    Tell whether ``host`` names this machine only (``127.0.0.0/8``, ``localhost``, ``::1``).
    """
    return host in _LOOPBACK_NAMES or host.startswith("127.")


def _hostname(host_header: str) -> str:
    # "127.0.0.1:8237" -> "127.0.0.1"; "[::1]:8237" -> "[::1]".
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if ":" in host_header else host_header


class Guard:
    """
    The ASGI middleware in front of every route but ``/static``.

    - Without a token the page serves only requests addressed to a loopback name (a web site
      whose name resolves to 127.0.0.1 cannot read it: DNS rebinding).
    - With ``token``, every request needs it: ``Authorization: Bearer TOKEN`` (scripts), or
      the cookie set by opening the page once with ``?token=TOKEN`` (browsers).
    - ``read_only`` refuses every POST with 403.
    - A POST needs the bearer token, or the page's CSRF token in the ``X-CSRF-Token`` header
      from a page of the same origin.
    """

    def __init__(
        self, app: ASGIApp, *, token: str | None, read_only: bool, csrf_token: str
    ) -> None:
        self.app = app
        self.token = token
        self.read_only = read_only
        #: The CSRF token the pages carry.
        self.csrf_token = csrf_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, message, extra = refusal
            await _send_refusal(scope, send, status, message, extra)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(
        self, scope: Scope, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        path: str = scope["path"]
        if path.startswith("/static/"):
            return None
        host = headers.get("host", "")
        if self.token is None and not is_loopback(_hostname(host)):
            return 403, f"this page answers only to 127.0.0.1 or localhost, not {host!r}", []
        bearer = self._has_bearer(headers)
        if self.token is not None and not bearer:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            given = query.pop("token", None)
            if given is not None and _same(given, self.token) and scope["method"] == "GET":
                # Keep the token in an HttpOnly cookie and drop it from the address bar.
                rest = urlencode(query)
                cookie = (f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/").encode(
                    "latin-1"
                )
                location = (path + (f"?{rest}" if rest else "")).encode("latin-1")
                return 303, "", [(b"location", location), (b"set-cookie", cookie)]
            if not self._has_cookie(headers):
                return 401, "this page needs its token: open the address `routilux ui` printed", []
        if scope["method"] in ("GET", "HEAD"):
            return None
        if self.read_only:
            return 403, "this page is read-only (routilux ui --read-only)", []
        if bearer:
            return None
        origin = headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] != host:
            return 403, "a POST from another site is refused", []
        if not _same(headers.get(CSRF_HEADER, ""), self.csrf_token):
            return 403, "a POST needs the page's CSRF token (X-CSRF-Token) or the access token", []
        return None

    def _has_bearer(self, headers: dict[str, str]) -> bool:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return self.token is not None and scheme.lower() == "bearer" and _same(value, self.token)

    def _has_cookie(self, headers: dict[str, str]) -> bool:
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except CookieError:  # a malformed cookie header carries no token
            return False
        morsel = cookies.get(TOKEN_COOKIE)
        return morsel is not None and self.token is not None and _same(morsel.value, self.token)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


async def _send_refusal(
    scope: Scope, send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]]
) -> None:
    # JSON for the API and scripts, one line of text for a browser.
    if scope["path"].startswith("/api/"):
        body = json.dumps({"error": message}).encode("utf-8")
        kind = b"application/json"
    else:
        body = message.encode("utf-8")
        kind = b"text/plain; charset=utf-8"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()), *extra]
    headers.extend(_HEADERS)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
