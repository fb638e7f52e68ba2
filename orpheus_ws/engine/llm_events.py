"""A generation's server-sent events -> its token ids (no I/O).

llama-server's ``/completion`` streams one event per token, ``{"tokens": [id], "content": ...,
"stop": false}``, and ends with ``"stop": true``; ``/v1/completions`` (vLLM, SGLang, LM
Studio, llama-server) streams ``{"choices": [{"text": "<custom_token_N>", "finish_reason":
null}]}`` and ends with a ``finish_reason`` and ``[DONE]``. ``TokenEvents`` reads the body as it
comes, in pieces cut anywhere, and appends every event's ids in one list per network read: a
read of many events costs one call, not one per event. The generation ends at the backend's
stop, or at end-of-speech (128258) or end-of-turn whether or not the backend treats them as the
end: what follows them is not the segment's.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from ..exceptions import BackendProtocolError, BackendUnavailable
from ..vocabulary import END_OF_SPEECH, EOT, parse_custom_token

LlmApi = Literal["llama", "openai"]
_ENDS = (END_OF_SPEECH, EOT)


class TokenEvents:
    """One generation's event stream. ``feed(body)`` appends to ``ids`` the ids of every event
    the piece completes (the reader takes them after each network read); ``whole``: the body so
    far ends on an event's end. ``ended`` is set at the generation's end (the backend's stop,
    [DONE], end-of-speech), ``spoke_to_end`` when end-of-speech or end-of-turn ended it (the
    backend may go on generating: its request is to be dropped, not waited for). Raises
    ``BackendProtocolError`` for what is not an Orpheus token stream and ``BackendUnavailable``
    for an error the backend reports."""

    __slots__ = ("_api", "_rest", "ended", "ids", "spoke_to_end")

    def __init__(self, api: LlmApi) -> None:
        self._api = api
        self._rest = b""
        self.ids: list[int] = []
        self.ended = False
        self.spoke_to_end = False

    @property
    def whole(self) -> bool:
        return not self._rest

    def feed(self, body: bytes) -> None:
        if self.ended:
            return
        if self._rest:
            body = self._rest + body
        lines = body.split(b"\n")
        self._rest = lines.pop()
        ids = self.ids
        start = len(ids)
        llama = self._api == "llama"
        for line in lines:
            if not line.startswith(b"data:"):
                continue  # blank lines between events, comments, other fields
            payload = line[5:].strip()
            if payload == b"[DONE]":
                self.ended = True
                break
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                raise BackendProtocolError("the LLM backend sent malformed JSON") from exc
            if llama and type(event) is dict and "error" not in event:
                tokens = event.get("tokens")  # the common case, one call less
                if type(tokens) is list and tokens and all(type(t) is int for t in tokens):
                    ids.extend(tokens)
                    if event.get("stop"):
                        self.ended = True
                        break
                    continue
            if self._event(event, ids):
                self.ended = True
                break
        if END_OF_SPEECH in ids or EOT in ids:
            stop = min(i for i in range(start, len(ids)) if ids[i] in _ENDS)
            del ids[stop:]
            self.ended = self.spoke_to_end = True
        if self.ended:
            self._rest = b""

    def _event(self, event: Any, ids: list[int]) -> bool:
        """Appends the event's token ids; True when the event ends the generation."""
        if not isinstance(event, dict):
            raise BackendProtocolError("the LLM backend sent an unexpected event")
        if "error" in event:
            raise BackendUnavailable("the LLM backend reported an error")
        if self._api == "llama":
            tokens = event.get("tokens")
            if isinstance(tokens, list) and tokens:
                try:
                    ids.extend([int(t) for t in tokens])
                except (TypeError, ValueError) as exc:
                    raise BackendProtocolError("the LLM backend sent a token that is no id") \
                        from exc
            else:
                content = event.get("content") or ""
                found = parse_custom_token(content)
                if content.strip() and not found:
                    raise BackendProtocolError("the LLM backend streamed text, not audio tokens")
                ids.extend(found)
            return bool(event.get("stop"))
        choices = event.get("choices") or []
        if not choices:
            return False
        choice = choices[0]
        text = choice.get("text") or ""
        found = parse_custom_token(text)
        if text.strip() and not found:
            raise BackendProtocolError("the LLM backend streamed text, not audio tokens")
        ids.extend(found)
        return choice.get("finish_reason") is not None
