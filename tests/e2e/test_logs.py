"""``--log-format json``: every line the server writes is one JSON object with the id of the
request or socket it belongs to (a native socket's is its ``ready.session_id``); keys never
appear, even when a browser sends one in the query."""

from __future__ import annotations

from pathlib import Path

import orjson
import websockets

from orpheus_ws.client import OrpheusClient
from orpheus_ws.devtools.standin_llm import StandinLLMServer

from .harness import ServerProcess, serve_command

KEY = "log-test-key-0042"


async def test_json_lines_with_ids_and_no_keys(standin: StandinLLMServer, snac_dir: Path,
                                               tmp_path: Path) -> None:
    standin.config.frames = 2
    server = ServerProcess(lambda port: serve_command(
        port, standin.url, snac_dir, "--codec", "passthrough", "--log-format", "json",
        "--api-key", KEY, "--log-level", "debug"), tmp_path / "server.log")
    await server.start()
    try:
        async with OrpheusClient.connect(server.ws_url + f"?api_key={KEY}") as client:
            session = client.ready["session_id"]
            handle = await client.open_context("c")
            await handle.send_text("Logged.", end=True)
            await handle.collect()
        try:
            async with websockets.connect(server.ws_url + "?api_key=wrong"):
                pass
        except websockets.InvalidStatus:
            pass
    finally:
        await server.stop()
    lines = [orjson.loads(line) for line in
             (tmp_path / "server.log").read_text().splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "id", "message"} <= set(x) for x in lines)
    assert any(x["id"] == session for x in lines)  # the socket's lines carry its session id
    refused = [x for x in lines if "refused" in x["message"]]
    assert refused and all(x["id"] != "-" for x in refused)
    text = (tmp_path / "server.log").read_text()
    assert KEY not in text and "api_key=***" in text
