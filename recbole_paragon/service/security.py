"""The service's door: the API token, the Host allow-list, security headers and the request-body limit.

* **Token**: ``PARAGON_API_TOKEN`` in the environment, or a file named by ``PARAGON_API_TOKEN_FILE`` (never a
  command-line argument, which ``ps`` shows to every user). When one is configured every route but ``/health``
  needs ``Authorization: Bearer <token>``, compared in constant time (``hmac.compare_digest``).
* **Host**: a loopback service is reachable from any web page through DNS rebinding unless it checks the ``Host``
  header; only ``serve_allowed_hosts`` (and the address the service binds) are answered.
* **Headers**: a Content-Security-Policy that allows only the service's own files, ``X-Frame-Options: DENY``,
  ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` on every answer.
* **Body**: a declared ``Content-Length`` over ``serve_max_body_bytes`` is refused before anything is read; the
  route that reads a body stops at the same limit (:func:`read_json_body`) when the length is not declared.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import os
import re
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

from recbole_paragon.echo import brief

TOKEN_VARIABLE = "PARAGON_API_TOKEN"
TOKEN_FILE_VARIABLE = "PARAGON_API_TOKEN_FILE"
MIN_TOKEN_LENGTH = 16
MAKE_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
OPEN_PATHS = frozenset({"/health"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SECURITY_HEADERS: List[Tuple[bytes, bytes]] = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                 b"script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                                 b"form-action 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class RequestError(Exception):
    """A request refused before it reaches the recommender: an HTTP status and a message that names the fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# -- the token -----------------------------------------------------------------------------------------------------
def api_token(environ: Mapping[str, str] = os.environ) -> Optional[str]:
    """The configured API token (``None``: none configured); a clear ``ValueError`` for an unusable one."""
    direct, path = environ.get(TOKEN_VARIABLE) or None, environ.get(TOKEN_FILE_VARIABLE) or None
    if direct and path:
        raise ValueError(f"set {TOKEN_VARIABLE} or {TOKEN_FILE_VARIABLE}, not both")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                direct = handle.read().strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"{TOKEN_FILE_VARIABLE}={path} cannot be read ({error.__class__.__name__}): point it at "
                             f"a file holding the token") from None
    if direct is None:
        return None
    if len(direct) < MIN_TOKEN_LENGTH or not re.fullmatch(r"[\x21-\x7e]+", direct):
        raise ValueError(f"the API token must be at least {MIN_TOKEN_LENGTH} printable ASCII characters without "
                         f"spaces; make one with {MAKE_TOKEN}")
    return direct


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service on this machine."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(configured: Iterable[str], bound: Optional[str]) -> Optional[frozenset]:
    """Host names answered: the configured ones (``*``: any, ``None`` returned) plus a specific bound address."""
    names = {str(name).strip("[]").lower() for name in configured}
    if "*" in names:
        return None
    if bound and bound not in ("0.0.0.0", "::"):
        names.add(bound.strip("[]").lower())
    return frozenset(names)


def host_name(value: str) -> str:
    """The name part of a ``Host`` header (``example.org:8000`` -> ``example.org``, ``[::1]:80`` -> ``::1``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


# -- the middleware ------------------------------------------------------------------------------------------------
class Guard:
    """ASGI middleware in front of every route: Host, token, declared body size, then security headers."""

    def __init__(self, app, token: Optional[str], hosts: Optional[frozenset], max_body: int) -> None:
        self.app = app
        self.token = None if token is None else token.encode()
        self.hosts = hosts
        self.max_body = int(max_body)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        refusal = self.refusal(scope)
        if refusal is not None:
            return await _answer(with_headers, *refusal)
        await self.app(scope, receive, with_headers)

    def refusal(self, scope) -> Optional[Tuple[int, str, Sequence[Tuple[bytes, bytes]]]]:
        """``(status, message, extra headers)`` of a request refused at the door, else ``None``."""
        headers = {}
        for name, value in scope.get("headers", ()):
            headers.setdefault(name.lower(), value)
        host = headers.get(b"host", b"").decode("latin-1")
        if self.hosts is not None and host_name(host) not in self.hosts:
            return 400, (f"Host {brief(host)} is not served here: use one of {sorted(self.hosts)}, or add the name "
                         f"the clients use to serve_allowed_hosts"), ()
        if self.token is not None and scope.get("path") not in OPEN_PATHS and not self._authorised(headers):
            return 401, (f"missing or wrong API token: send the header 'Authorization: Bearer <token>' with the "
                         f"service's token ({TOKEN_VARIABLE})"), ((b"www-authenticate", b"Bearer"),)
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_body:
            return 413, (f"the body is larger than serve_max_body_bytes ({self.max_body} bytes): send a shorter "
                         f"history or raise the limit"), ()
        return None

    def _authorised(self, headers) -> bool:
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)


async def _answer(send, status: int, message: str, extra: Sequence[Tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *extra]})
    await send({"type": "http.response.body", "body": body})


# -- the body ------------------------------------------------------------------------------------------------------
async def read_json_body(request, max_bytes: int) -> Any:
    """The JSON body of ``request``: ``Content-Type: application/json``, at most ``max_bytes``, standard JSON
    (``NaN`` / ``Infinity`` refused); a :class:`RequestError` that names the problem otherwise."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise RequestError(415, f"send the body as JSON with the header 'Content-Type: application/json', got "
                                f"Content-Type {brief(content_type) if content_type else 'none'}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestError(413, f"the body is larger than serve_max_body_bytes ({max_bytes} bytes): send a "
                                    f"shorter history or raise the limit")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks), parse_constant=_no_constant)
    except ValueError as error:
        where = f" at character {error.pos}" if isinstance(error, json.JSONDecodeError) else ""
        reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        raise RequestError(422, f"the body is not valid JSON ({brief(reason, 80)}{where})") from None
    except RecursionError:
        raise RequestError(422, "the body is not valid JSON (nested too deeply)") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")
