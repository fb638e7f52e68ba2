"""Command line of the stand-in llama-server (:mod:`orpheus_ws.devtools.standin_llm`).

``python -m orpheus_ws.devtools.standin_llm --port 8090 --tokens-per-second 100 --slots 8
[--frames N] [--fault FAULT] [--seed S] [--no-eos-stop]``; ``--port 0`` picks a free port. Once
listening it prints ``standin llama-server listening on http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from orpheus_ws.devtools.standin_llm import FAULTS, StandinConfig, StandinLLMServer


def parse_args(argv: list[str] | None = None) -> tuple[StandinConfig, int]:
    """The config and port from a command line (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m orpheus_ws.devtools.standin_llm",
        description="A stand-in llama-server for Orpheus audio.",
    )
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
    parser.add_argument("--tokens-per-second", type=float, default=100.0,
                        help="per stream; 0 or inf = as fast as possible")
    parser.add_argument("--slots", type=int, default=4, help="parallel generations")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per generation, then end of speech")
    parser.add_argument("--fault", choices=FAULTS, default="none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-eos-stop", action="store_true",
                        help="send 128258 as an ordinary token and keep going")
    args = parser.parse_args(argv)
    config = StandinConfig(
        tokens_per_second=args.tokens_per_second, slots=args.slots, frames=args.frames,
        fault=args.fault, seed=args.seed, emit_eos_as_stop=not args.no_eos_stop)
    return config, args.port


async def serve(config: StandinConfig, port: int) -> None:
    """Serve until SIGINT or SIGTERM; prints the URL once listening."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    async with StandinLLMServer(config, port=port) as server:
        print(f"standin llama-server listening on {server.url}", flush=True)
        await done.wait()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    config, port = parse_args(argv)
    asyncio.run(serve(config, port))


if __name__ == "__main__":
    main()
