"""The server's Prometheus metrics (``GET /metrics``), with ``prometheus_client``.

Every metric is updated where its event happens (the gate, the engine, the decoder, the
protocol endpoint), so that under ``--workers N`` prometheus_client's multiprocess mode adds
up all the workers (``orpheus-ws serve`` sets ``PROMETHEUS_MULTIPROC_DIR``). ``route`` is the
kind of route (``native``, ``sse``, ``openai``, ``deepgram``, ``elevenlabs``, ``cartesia``,
``together``, ``baseten``, ``other``).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)
DECODE_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

SOCKETS_OPEN = Gauge("orpheus_ws_sockets_open", "WebSockets open", ["route"],
                     multiprocess_mode="livesum")
CONTEXTS_OPEN = Gauge("orpheus_ws_contexts_open",
                      "Utterances being synthesized (contexts, requests, vendor turns)",
                      multiprocess_mode="livesum")
GENERATIONS_IN_FLIGHT = Gauge("orpheus_ws_generations_in_flight",
                              "LLM generations (segments) running", multiprocess_mode="livesum")
GENERATIONS_QUEUED = Gauge("orpheus_ws_generations_queued",
                           "Utterances waiting for a generation slot",
                           multiprocess_mode="livesum")
TIME_TO_FIRST_AUDIO = Histogram("orpheus_ws_time_to_first_audio_seconds",
                                "From an utterance's start to its first audio", ["route"],
                                buckets=LATENCY_BUCKETS)
TIME_TO_FIRST_SPEECH = Histogram("orpheus_ws_time_to_first_speech_seconds",
                                 "From an utterance's start to its first frame of speech (by "
                                 "level: engine/level.py)", ["route"], buckets=LATENCY_BUCKETS)
GENERATION_TIME = Histogram("orpheus_ws_generation_seconds",
                            "From an utterance's start to its last audio", ["route"],
                            buckets=(*LATENCY_BUCKETS, 30.0, 60.0))
DECODE_CALL = Histogram("orpheus_ws_decode_call_seconds", "One SNAC decode call",
                        buckets=DECODE_BUCKETS)
DECODE_BATCH = Histogram("orpheus_ws_decode_batch_size", "Windows in one SNAC decode call",
                         buckets=BATCH_BUCKETS)
AUDIO_SECONDS = Counter("orpheus_ws_audio_seconds", "Seconds of audio produced", ["route"])
BACKEND_ERRORS = Counter("orpheus_ws_backend_errors", "LLM backend failures", ["code"])
RUNAWAYS = Counter("orpheus_ws_runaway_segments",
                   "Segment generations the runaway guard ended (length or repeat)", ["reason"])
FRAMES_DROPPED = Counter("orpheus_ws_frames_dropped",
                         "Frames lost to an audio token out of position (the stream went on)")
PROTOCOL_ERRORS = Counter("orpheus_ws_protocol_errors",
                          "Client messages refused on the native socket", ["code"])
HTTP_RESPONSES = Counter("orpheus_ws_http_responses",
                         "HTTP responses (and refused WebSocket handshakes)",
                         ["route", "status"])
AUTH_REFUSALS = Counter("orpheus_ws_auth_refusals", "Requests and sockets without a valid key",
                        ["route"])
OVERLOAD_REFUSALS = Counter("orpheus_ws_overload_refusals",
                            "Work refused for want of room (503/429, server_busy, ...)",
                            ["reason"])


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format: this process's, or every worker's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
