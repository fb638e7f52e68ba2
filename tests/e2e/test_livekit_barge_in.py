"""LiveKit's streaming TTS plugins when an agent drops a reply mid-way (barge-in): the
plugin closes the stream; the generation behind it stops, and the next turn on the same TTS
object is whole. Deepgram's and Cartesia's plugins retire a socket whose stream was cut short
and close it when the next turn takes a socket from their pool; Baseten's closes its socket at
once. (ElevenLabs' plugin sends nothing for a stream whose input had ended:
docs/compatibility.md.)"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from livekit.plugins import baseten, cartesia, deepgram

from orpheus_ws.devtools.standin_llm import StandinLLMServer

from ..utils import eventually
from .harness import SAMPLES_PER_FRAME, ServerProcess
from .livekit_audio import streamed

FRAMES = 6
LONG = "This is a long reply, and it goes on and on. It has a second sentence too."


def plugin(name: str, server: ServerProcess, http: aiohttp.ClientSession) -> Any:
    if name == "deepgram":
        return deepgram.TTS(base_url=server.url + "/v1/speak", api_key="unused",
                            http_session=http)
    if name == "cartesia":
        return cartesia.TTS(base_url=server.url, api_key="unused", http_session=http)
    return baseten.TTS(model_endpoint=server.url.replace("http", "ws") + "/v1/baseten",
                       api_key="unused", http_session=http)


@pytest.mark.parametrize("name", ["deepgram", "cartesia", "baseten"])
async def test_a_stream_closed_mid_reply_frees_the_slot_and_the_next_turn_is_whole(
        name: str, standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 300
    fake_llm.config.tokens_per_second = 100
    async with aiohttp.ClientSession() as http:
        tts = plugin(name, standin_server, http)
        stream = tts.stream()
        for word in LONG.split():
            stream.push_text(word + " ")
        stream.end_input()
        async for _ in stream:
            break  # the first audio: the reply is under way
        assert fake_llm.active > 0
        await stream.aclose()
        fake_llm.config.frames = FRAMES
        fake_llm.config.tokens_per_second = 0
        samples, rates = await streamed(tts, "Next one.")
        assert rates == {24000} and samples == FRAMES * SAMPLES_PER_FRAME
        await eventually(lambda: fake_llm.active == 0, timeout=2, what="the cut reply stopped")
        await tts.aclose()
