"""Together's speech socket, WS /v1/audio/speech/websocket: pipecat's TogetherTTSService,
unchanged but for its url, through run_test; a raw socket for commit, clear and faults."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import orjson
import websockets
from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame, TTSStoppedFrame
from pipecat.services.together.tts import TogetherTTSService
from pipecat.tests.utils import SleepFrame, run_test

from orpheus_ws.devtools.standin_llm import StandinLLMServer

from .harness import SAMPLES_PER_FRAME, ServerProcess, completions

FRAMES = 6


def url(server: ServerProcess, query: str = "?model=orpheus&voice=tara") -> str:
    return server.url.replace("http", "ws") + "/v1/audio/speech/websocket" + query


async def test_pipecat_together_tts_service(standin_server: ServerProcess,
                                            fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    tts = TogetherTTSService(api_key="unused", url=url(standin_server, ""),
                             settings=TogetherTTSService.Settings(
                                 model="canopylabs/orpheus-3b-0.1-ft", voice="mia"))
    down, _ = await run_test(tts, frames_to_send=[
        TTSSpeakFrame("Hello there."), SleepFrame(1.5), TTSSpeakFrame("And again."),
        SleepFrame(1.5)])
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert {f.sample_rate for f in audio} == {24000}
    assert sum(len(f.audio) for f in audio) == 2 * FRAMES * SAMPLES_PER_FRAME * 2
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2
    assert completions(fake_llm)[-2:] == ["mia: Hello there.", "mia: And again."]


async def until(socket: Any, kind: str, timeout: float = 10.0) -> tuple[dict[str, Any], int]:
    """The first event of ``kind`` and the audio bytes of the deltas before it."""
    audio = 0
    deadline = time.monotonic() + timeout
    while True:
        event = orjson.loads(await asyncio.wait_for(socket.recv(),
                                                    max(0.01, deadline - time.monotonic())))
        if event["type"] == "conversation.item.audio_output.delta":
            audio += len(base64.b64decode(event["delta"]))
        if event["type"] == kind:
            return event, audio


async def send(socket: Any, **event: Any) -> None:
    await socket.send(orjson.dumps(event).decode())


async def test_commit_clear_and_faults_on_a_raw_socket(standin_server: ServerProcess,
                                                        fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 300
    fake_llm.config.tokens_per_second = 100
    async with websockets.connect(url(standin_server)) as socket:
        assert (await until(socket, "session.created"))[0]["session"]["voice"] == "tara"
        await send(socket, type="tts_session.updated", session={"voice": "zac"})
        assert (await until(socket, "session.updated"))[0]["session"]["voice"] == "zac"
        await send(socket, type="input_text_buffer.append", text="A long reply. " * 4)
        await send(socket, type="input_text_buffer.commit")
        await send(socket, type="input_text_buffer.commit")  # empty: a no-op
        await until(socket, "conversation.item.audio_output.delta")
        assert fake_llm.active > 0
        await send(socket, type="input_text_buffer.clear")
        started = time.monotonic()
        while fake_llm.active:
            assert time.monotonic() - started < 1, "the generation was not aborted"
            await asyncio.sleep(0.01)
        fake_llm.config.frames = FRAMES
        fake_llm.config.tokens_per_second = 0
        await send(socket, type="input_text_buffer.append", text="Short.")
        await send(socket, type="input_text_buffer.commit")
        received, _ = await until(socket, "conversation.item.input_text.received")
        done, audio = await until(socket, "conversation.item.audio_output.done")
        assert done["item_id"] == received["item_id"]
        assert audio == FRAMES * SAMPLES_PER_FRAME * 2  # this item's, whole, nothing stale
        assert completions(fake_llm)[-1] == "zac: Short."
        await send(socket, type="shout")
        error, _ = await until(socket, "error")
        assert error["error"]["code"] == "unknown_event"
        fake_llm.config.fault = "refuse"
        await send(socket, type="input_text_buffer.append", text="Hi.")
        await send(socket, type="input_text_buffer.commit")
        failed, _ = await until(socket, "conversation.item.tts.failed")
        assert failed["error"]["code"] == "backend_unavailable"
        fake_llm.config.fault = "none"
        await send(socket, type="input_text_buffer.append", text="Hi again.")
        await send(socket, type="input_text_buffer.commit")
        _, audio = await until(socket, "conversation.item.audio_output.done")
        assert audio == FRAMES * SAMPLES_PER_FRAME * 2
