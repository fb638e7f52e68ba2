"""Server settings: one dataclass, read from ``ORPHEUS_WS_*`` environment variables.

Each CLI flag of ``orpheus-ws serve`` sets the variable of the same name, so ``uvicorn
orpheus_ws.app:app`` and gunicorn workers read exactly what the CLI would have set.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, fields
from typing import Any

from .lineup import LANGUAGES, Lineup

# Orpheus 3B, the English fine-tune, one Q4_K_M GGUF (2 GB): llama.cpp's default quant, the
# smallest download of the published ones, and fast enough on a CPU to try it (README).
DEFAULT_MODEL = "isaiahbjork/orpheus-3b-0.1-ft-Q4_K_M-GGUF"
DEFAULT_SNAC = "hubertsiuzdak/snac_24khz"  # SNAC 24 kHz, the codec Orpheus writes tokens for


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 9100
    # Empty: `orpheus-ws serve` runs llama-server itself (the managed backend) with:
    llm_url: str = ""
    model: str = DEFAULT_MODEL
    llama_server: str = ""
    streams: int = 8
    gpus: str = ""  # managed: one llama-server per GPU index listed ("0,1")
    llama_args: str = ""  # shell-quoted, from the repeatable --llama-arg
    llm_api: str = "llama"
    llm_model: str = "orpheus"
    llm_timeout: float = 30.0
    llm_check_interval: float = 2.0  # seconds between health checks of several backends
    snac_model: str = DEFAULT_SNAC
    device: str = "auto"
    # Empty: the model's own (lineup.py); named: another fine-tune's, or a subset.
    voices: str = ""
    default_voice: str = ""
    emotion_tags: str = ""
    language: str = ""  # the normalizer's language for every voice; empty: each voice's own
    voice_map: str = ""  # vendor voice names onto Orpheus voices, "alloy=leah,ash=zac"
    torch_threads: int = 0
    # Decoder service and chunk schedule (BENCHMARKS.md measures them).
    codec: str = "snac"
    decoder_noise: bool = True
    snac_graphs: str = "auto"
    batching: bool = True
    max_batch: int = 32
    max_batch_wait_ms: str = "auto"
    max_new_frames: str = "auto"
    schedule_margin_ms: str = "auto"
    lookahead: int = 1
    # A generation bounded by what its text can take to say, repeats cut (engine/guard.py).
    runaway_guard: bool = True
    # An utterance's leading quiet left out, later segments' capped (engine/trim.py); each
    # request or context may turn it off.
    trim_quiet: bool = True
    # Numbers, dates, currency, units, URLs... read as words in the voice's language before
    # the model gets them (text/normalize.py); each request or context may turn it off.
    normalize: bool = True
    # WebSocket limits (protocol.md).
    ws_max_connections: int = 1000  # open WebSockets, all routes; past it: 503 at the handshake
    ws_max_contexts: int = 8
    ws_max_message_bytes: int = 65536
    ws_max_text_chars: int = 5000
    ws_idle_timeout: float = 180.0
    ws_max_buffered_bytes: int = 4 * 1024 * 1024
    ws_ping_interval: float = 20.0
    ws_buffer_delay_ms: float = 300.0
    ws_send_timeout: float = 10.0
    # Putting it on a network (README, "On a network").
    api_key: str = ""  # comma-joined, from the repeatable --api-key
    api_keys_file: str = ""
    allowed_origins: str = "*"
    metrics_token: str = ""
    max_generations: int = 0  # utterances generating at once, server-wide; 0: no fixed cap
    key_max_generations: int = 0  # the same per API key; 0: no cap
    max_queued: int = 16  # utterances waiting for a generation slot
    queue_timeout: float = 5.0
    realtime_admission: bool = True  # refuse what the decoder or LLM can't keep in real time
    drain_timeout: float = 30.0
    log_level: str = "info"
    log_format: str = "text"
    # What one HTTP request may make the server hold (README, "On a network").
    http_max_body_bytes: int = 1024 * 1024  # the largest legitimate body is a few KiB of JSON
    http_body_timeout: float = 30.0
    http_max_header_bytes: int = 64 * 1024
    http_keepalive_timeout: int = 5
    # Home Assistant's Wyoming protocol on a TCP port of its own, in this process, on this
    # engine (compat/wyoming_server.py); 0: off. The protocol has no keys: a non-loopback host
    # with keys set needs wyoming_unauthenticated.
    wyoming_port: int = 0
    wyoming_host: str = "127.0.0.1"
    wyoming_unauthenticated: bool = False

    def batch_wait_s(self, device: str) -> float:
        """How long a window may wait for batch company, at most (never longer than the
        listener's audio in hand allows). ``auto``: 500 ms where a call costs about the same
        for one window or many (CUDA, the pass-through codec), 0 on the CPU, where a batch
        costs what its parts cost and waiting buys nothing (BENCHMARKS.md, 3)."""
        if self.max_batch_wait_ms == "auto":
            return 0.0 if device == "cpu" else 0.5
        return float(self.max_batch_wait_ms) / 1000

    def new_frames_cap(self, device: str) -> int:
        """The most new frames per window. ``auto``: 8 on the CPU, where a 10-frame window is
        cheapest per frame (BENCHMARKS.md), 16 elsewhere (fewer calls)."""
        if self.max_new_frames == "auto":
            return 8 if device == "cpu" else 16
        return int(self.max_new_frames)

    def margin_s(self, device: str) -> float:
        """Audio kept in hand against decode-time jitter. ``auto``: 100 ms on the CPU (decode
        times vary with load), 50 ms elsewhere."""
        if self.schedule_margin_ms == "auto":
            return 0.1 if device == "cpu" else 0.05
        return float(self.schedule_margin_ms) / 1000

    @property
    def lineup(self) -> Lineup:
        """The voices, emotion tags and languages the server offers (those of ``model``, or
        the ones named)."""
        return Lineup.of(self.model, voices=self.voices, default=self.default_voice,
                         emotion_tags=self.emotion_tags, language=self.language)

    @property
    def voice_list(self) -> list[str]:
        return list(self.lineup.voices)

    @classmethod
    def env_name(cls, field: str) -> str:
        return "ORPHEUS_WS_" + field.upper()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from the environment; ``overrides`` win (None values are ignored)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(cls.env_name(f.name))
            if raw is not None:
                values[f.name] = _parse(f.name, str(f.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def to_env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[self.env_name(f.name)] = ("1" if value else "0") if isinstance(value, bool) \
                else str(value)
        return out

    def validate(self) -> None:
        if self.llm_api not in ("llama", "openai"):
            raise ValueError("llm_api must be 'llama' or 'openai'")
        if self.device not in ("auto", "cuda", "cpu"):
            raise ValueError("device must be auto, cuda or cpu")
        if self.max_batch_wait_ms != "auto":
            try:
                if float(self.max_batch_wait_ms) < 0:
                    raise ValueError
            except ValueError:
                raise ValueError("max_batch_wait_ms must be 'auto' or a number >= 0") from None
        if self.max_new_frames != "auto" and not (
                self.max_new_frames.isdigit() and 1 <= int(self.max_new_frames) <= 64):
            raise ValueError("max_new_frames must be 'auto' or 1-64")
        if self.snac_graphs not in ("auto", "on", "off"):
            raise ValueError("snac_graphs must be auto, on or off")
        if self.codec not in ("snac", "passthrough", "noise", "level"):
            raise ValueError("codec must be snac, passthrough, noise or level")
        if self.streams < 1:
            raise ValueError("streams must be at least 1")
        if self.language and self.language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(sorted(LANGUAGES))} "
                             "(empty: each voice's own)")
        lineup = self.lineup
        if not lineup.voices:
            raise ValueError("at least one voice is needed")
        if any("=" not in pair for pair in self.voice_map.split(",") if pair.strip()):
            raise ValueError("voice_map must be NAME=VOICE pairs separated by commas")
        if lineup.default not in lineup.voices:
            raise ValueError(f"default voice {lineup.default!r} is not one of the voices "
                             f"({', '.join(lineup.voices)})")
        if self.log_format not in ("text", "json"):
            raise ValueError("log_format must be text or json")
        for name in ("http_max_body_bytes", "http_body_timeout", "http_max_header_bytes",
                     "http_keepalive_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be more than 0")
        if self.api_key and not all(key.strip() for key in self.api_key.split(",")):
            raise ValueError("api_key holds an empty key (a stray comma, or only spaces)")
        if not 0 <= self.wyoming_port <= 65535:
            raise ValueError("wyoming_port must be 0 (off) or a port number")
        if self.wyoming_port and (self.api_key or self.api_keys_file) \
                and not is_loopback(self.wyoming_host) and not self.wyoming_unauthenticated:
            raise ValueError(
                "the Wyoming port takes no API key (the protocol has none), so with keys set "
                f"it listens on {self.wyoming_host!r} only with --wyoming-unauthenticated: "
                "give that flag to let anyone who reaches the port speak, or keep "
                "--wyoming-host on 127.0.0.1")

    @property
    def api_keys(self) -> list[str]:
        return [key.strip() for key in self.api_key.split(",") if key.strip()]

    @property
    def origins(self) -> list[str]:
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()] or ["*"]


def is_loopback(host: str) -> bool:
    """``host`` (an address to bind) reaches this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _parse(name: str, type_name: str, raw: str) -> Any:
    try:
        if "bool" in type_name:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if "int" in type_name:
            return int(raw)
        if "float" in type_name:
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"{Settings.env_name(name)}={raw!r} is not a valid {type_name}") from exc
    return raw
