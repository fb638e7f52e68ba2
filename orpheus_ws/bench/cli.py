"""``orpheus-ws bench``: arguments and dispatch (filled in by the throughput work)."""

from __future__ import annotations

import argparse


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", nargs="?", default="load")


def run_bench(args: argparse.Namespace) -> int:
    raise SystemExit("orpheus-ws bench: not built yet")
