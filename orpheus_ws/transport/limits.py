"""The limits every socket lives under, whatever its wire protocol, from the server's settings.

One place decides them and the socket runtime (``runtime.py``) applies them, so a protocol
added later inherits every one: message size, text held per context and per socket, contexts
per socket, id lengths, idle time, send time and bytes queued for a client. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings
from ..exceptions import ProtocolError

# A vendor's ids (Cartesia's context_id, ElevenLabs' contextId, a flush id) are echoed in
# every message about them: a long one would multiply the bytes sent.
MAX_ID_CHARS = 256
# The text held for a whole socket, across its contexts, in units of one context's cap.
SOCKET_TEXT_CONTEXTS = 4


@dataclass(frozen=True, slots=True)
class SocketLimits:
    max_message_bytes: int = 65536
    max_text_chars: int = 5000  # text held for one context and not yet spoken
    max_socket_text_chars: int = 20000  # the same, for all of a socket's contexts together
    max_contexts: int = 8
    max_id_chars: int = MAX_ID_CHARS
    idle_timeout_s: float = 180.0
    send_timeout_s: float = 10.0
    max_buffered_bytes: int = 4 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> SocketLimits:
        return cls(
            max_message_bytes=settings.ws_max_message_bytes,
            max_text_chars=settings.ws_max_text_chars,
            max_socket_text_chars=settings.ws_max_text_chars * SOCKET_TEXT_CONTEXTS,
            max_contexts=settings.ws_max_contexts,
            idle_timeout_s=settings.ws_idle_timeout,
            send_timeout_s=settings.ws_send_timeout,
            max_buffered_bytes=settings.ws_max_buffered_bytes,
        )

    def check_text(self, adding: int, context_held: int, socket_held: int,
                   *, context_id: str | None = None) -> None:
        """Raises ``text_too_long`` if ``adding`` more characters would hold more text than a
        context or the socket may (text spoken is no longer held)."""
        if context_held + adding > self.max_text_chars:
            raise ProtocolError(
                "text_too_long", f"more than {self.max_text_chars} characters of text waiting "
                "to be spoken in this context; send more once it has been spoken",
                context_id=context_id, field="text")
        if socket_held + adding > self.max_socket_text_chars:
            raise ProtocolError(
                "text_too_long", f"more than {self.max_socket_text_chars} characters of text "
                "waiting to be spoken on this socket; send more once it has been spoken",
                context_id=context_id, field="text")

    def check_id(self, value: str, field: str) -> None:
        """Raises ``invalid_parameter`` for an id longer than ``max_id_chars``."""
        if len(value) > self.max_id_chars:
            raise ProtocolError("invalid_parameter",
                                f"{field} is longer than {self.max_id_chars} characters",
                                field=field)
