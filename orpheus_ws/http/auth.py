"""API keys: which keys the server takes, how each client presents one, and how a refusal
reads in each route's own error shape.

Keys come from ``--api-key`` (repeatable) and ``--api-keys-file`` (one per line, ``key`` or
``name:key``; blank lines and ``#`` comments skipped; read again on SIGHUP). An empty key, or
one of only spaces, is refused where it is read: the server doesn't start, and a reload keeps
the keys it had. A key is matched in constant time against every key, and only its name is
ever logged. A presented key loses only HTTP's optional whitespace (spaces and tabs, RFC 9110
section 5.6.3), never other Unicode whitespace such as a no-break space; an empty one matches
nothing.

A client presents its key the way its own SDK does, and every route takes every way:
``Authorization: Bearer KEY`` (OpenAI, our client), ``Authorization: Token KEY`` (Deepgram),
``Authorization: Api-Key KEY`` (Baseten), ``xi-api-key`` (ElevenLabs), ``X-API-Key``
(Cartesia), and for browsers, which can't set headers on a WebSocket, ``?api_key=KEY`` (or
Cartesia's ``?access_token=``) or a ``Sec-WebSocket-Protocol`` list ``token, KEY``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.types import Scope

log = logging.getLogger("orpheus_ws.auth")
SCHEMES = ("bearer", "token", "api-key")
KEY_HEADERS = (b"xi-api-key", b"x-api-key")
QUERY_KEYS = ("api_key", "access_token")
PROTOCOL_MARKERS = ("token", "bearer")
OWS = " \t"  # HTTP's optional whitespace (RFC 9110, 5.6.3): all a presented key loses
# Routes open to anyone whatever the keys: liveness, readiness, the index, the API document,
# the player page.
OPEN_PATHS = ("/", "/health", "/ready", "/openapi.json")
OPEN_PREFIXES = ("/client",)


class KeyRing:
    """The keys the server takes, by name. ValueError, naming the file and line, for a keys
    file that can't be read or holds an empty key."""

    def __init__(self, keys: Iterable[str] = (), file: str = "") -> None:
        self._given = list(keys)
        if not all(key.strip() for key in self._given):
            raise ValueError("--api-key: an empty key (or only spaces) would match nothing a "
                             "client should send; give the key")
        self.file = file
        self.keys = self.load()
        log.info("API keys loaded: %s", ", ".join(sorted(self.keys)) or "none (no key needed)")

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def load(self) -> dict[str, str]:
        """The keys given and those in the file now, by name."""
        keys = {f"key{n + 1}": key for n, key in enumerate(self._given)}
        if not self.file:
            return keys
        try:
            lines = Path(self.file).read_text().splitlines()
        except OSError as exc:
            raise ValueError(f"API keys file {self.file} not read: {exc.strerror}") from None
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, key = line.partition(":")
            if not sep:
                name, key = f"{Path(self.file).name}:{number}", line
            if not key.strip():
                raise ValueError(f"API keys file {self.file}, line {number}: the key of "
                                 f"{name.strip()!r} is empty; give it one, or remove the line")
            keys[name.strip()] = key.strip()
        return keys

    def reload(self) -> None:
        """Reads the keys again (SIGHUP); a file that can't be read, or holds an empty key,
        keeps the keys already loaded."""
        try:
            keys = self.load()
        except ValueError as exc:
            log.error("%s; keeping the %d keys loaded", exc, len(self.keys))
            return
        self.keys = keys
        log.info("API keys loaded: %s", ", ".join(sorted(keys)) or "none (no key needed)")

    def name_of(self, presented: str | None) -> str | None:
        """The name of the key ``presented`` is, compared in constant time with every key;
        None for an empty one."""
        if not presented:
            return None
        found = None
        given = presented.encode()
        for name, key in self.keys.items():
            if hmac.compare_digest(given, key.encode()):
                found = name
        return found


def headers_of(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", [])}


def presented_key(scope: Scope) -> str | None:
    """The key a request or handshake carries, in whichever client's way it came."""
    headers = headers_of(scope)
    authorization = headers.get(b"authorization", b"").decode("latin-1").strip(OWS)
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() in SCHEMES and value.strip(OWS):
        return value.strip(OWS)
    for header in KEY_HEADERS:
        if headers.get(header, b"").strip(OWS.encode()):
            return headers[header].decode("latin-1").strip(OWS)
    query: dict[str, list[str]] = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    for name in QUERY_KEYS:
        if query.get(name):
            return query[name][0]
    protocols = subprotocols(scope)
    for marker in PROTOCOL_MARKERS:
        if marker in protocols[:-1]:
            return protocols[protocols.index(marker) + 1]
    return None


def subprotocols(scope: Scope) -> list[str]:
    return [p.strip(OWS) for p in headers_of(scope).get(b"sec-websocket-protocol", b"")
            .decode("latin-1").split(",") if p.strip(OWS)]


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


@dataclass(frozen=True, slots=True)
class RouteKind:
    """A family of routes: its name (for metrics and logs) and its error body."""

    name: str
    prefixes: tuple[str, ...]

    def error(self, code: str, message: str) -> dict[str, Any]:
        """``message`` in this route family's own error shape."""
        if self.name == "openai":
            return {"error": {"message": message, "type": "invalid_request_error",
                              "param": None, "code": code}}
        if self.name == "deepgram":
            return {"err_code": code.upper(), "err_msg": message}
        if self.name == "elevenlabs":
            return {"detail": {"status": code, "message": message}}
        if self.name in ("cartesia", "baseten"):
            return {"error": message, "code": code}
        return {"error": {"code": code, "message": message}, "detail": message}


ROUTE_KINDS = (
    RouteKind("together", ("/v1/audio/speech/websocket",)),
    RouteKind("openai", ("/v1/audio/", "/v1/models")),
    RouteKind("deepgram", ("/v1/speak",)),
    RouteKind("elevenlabs", ("/v1/text-to-speech/",)),
    RouteKind("cartesia", ("/tts/",)),
    RouteKind("baseten", ("/v1/baseten",)),
    RouteKind("sse", ("/api/tts/stream",)),
    RouteKind("native", ("/api/",)),
)
OTHER = RouteKind("other", ())


def route_kind(path: str) -> RouteKind:
    for kind in ROUTE_KINDS:
        if path.startswith(kind.prefixes):
            return kind
    return OTHER
