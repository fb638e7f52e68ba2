"""The web player (web_client/) in Chromium against the real server, llama-server and SNAC.

``window.orpheusDebug`` (web_client/app.js) exposes the page's counters: samples from the
socket, samples handed to the AudioWorklet, samples the worklet itself reports, and so on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import shutil
import wave
from pathlib import Path
from typing import Any

import numpy as np
from playwright.async_api import Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from orpheus_ws.audio import alaw_encode, mulaw_encode
from orpheus_ws.devtools.standin_llm import StandinLLMServer
from orpheus_ws.ws.protocol import encode_audio_frame

from ..e2e.harness import ServerProcess, serve_command
from ..utils import scaled
from .conftest import Browser, BrowserPage

REPO = Path(__file__).resolve().parents[2]
SHORT = 128  # max_tokens: 18 frames, 1.5 s of audio per segment
LONG = 2048  # max_tokens: 292 frames, 25 s per segment (the tiny model never stops early)
MS = 1000.0
TYPED_TEXT = ("Hello there. This is typed word by word, as a language model streams its reply, "
              "and the listener hears the first words long before the last ones are written. "
              "It goes on for a while yet, in case this machine is a slow one.")


async def debug(page: Page) -> dict[str, Any]:
    value: dict[str, Any] = await page.evaluate("({...window.orpheusDebug, ready: null})")
    return value


async def wait_for(page: Page, condition: str, timeout: float = 30.0) -> None:
    """Waits until the JS expression holds (``d`` is window.orpheusDebug)."""
    expression = f"(() => {{ const d = window.orpheusDebug; return {condition}; }})()"
    await page.wait_for_function(expression, timeout=scaled(timeout) * MS, polling=20)


async def open_player(browser: Browser, server: ServerProcess) -> BrowserPage:
    opened = await browser.open(f"{server.url}/client")
    await wait_for(opened.page, "d.ready !== null")
    return opened


async def set_max_tokens(page: Page, value: int) -> None:
    await page.fill("#max-tokens", str(value))


async def test_page_loads_connected_with_the_voices(browser: Browser, web_server: ServerProcess
                                                    ) -> None:
    opened = await open_player(browser, web_server)
    page = opened.page
    assert page.url == f"{web_server.url}/client/"
    await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    assert await page.input_value("#server-url") == web_server.ws_url
    voices = await page.eval_on_selector_all("#voice option", "os => os.map(o => o.value)")
    assert voices == ["tara", "leah", "jess", "leo", "dan", "mia", "zac", "zoe"]
    assert await page.input_value("#voice") == "tara"
    tags = await page.eval_on_selector_all("#emotions button", "bs => bs.map(b => b.dataset.tag)")
    assert "<laugh>" in tags and "<sigh>" in tags
    assert await page.input_value("#max-tokens") == "512"  # the ready event's defaults
    assert await page.input_value("#buffer-delay") == "300"
    await expect(page.locator("#error")).to_be_hidden()
    assert await page.is_disabled("#stop")
    assert opened.console_errors == []


async def test_emotion_tag_is_inserted_at_the_cursor(browser: Browser, web_server: ServerProcess
                                                     ) -> None:
    page = (await open_player(browser, web_server)).page
    await page.fill("#text", "Well that was funny")
    await page.focus("#text")
    await page.evaluate("document.getElementById('text').setSelectionRange(4, 4)")
    await page.click('#emotions button[data-tag="<laugh>"]')
    assert await page.input_value("#text") == "Well <laugh> that was funny"


async def test_frame_parser_reads_every_encoding_the_server_writes(
        browser: Browser, web_server: ServerProcess) -> None:
    page = (await open_player(browser, web_server)).page
    pcm = np.array([0, 1, -1, 1000, -1000, 32767, -32768, 12345], dtype=np.int16)
    payloads = {
        "pcm_s16le": pcm.astype("<i2").tobytes(),
        "pcm_f32le": (pcm / 32768).astype("<f4").tobytes(),
        "mulaw": mulaw_encode(pcm).tobytes(),
        "alaw": alaw_encode(pcm).tobytes(),
    }
    frames = {
        encoding: base64.b64encode(encode_audio_frame(
            "ctx-é7", payload, encoding=encoding, sample_rate=8000 if "law" in encoding else 24000,
            sample_offset=2**33 + 5, sequence=9, segment=3, flags=3)).decode()
        for encoding, payload in payloads.items()
    }
    parsed = await page.evaluate("""async (frames) => {
        const { parseFrame, toFloat32 } = await import("/client/frame.js");
        const out = {};
        for (const [name, b64] of Object.entries(frames)) {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const f = parseFrame(bytes.buffer);
            out[name] = { ...f, samples: Array.from(f.samples),
                          floats: Array.from(toFloat32(f)), kind: f.samples.constructor.name };
        }
        return out;
    }""", frames)
    for encoding, frame in parsed.items():
        assert frame["version"] == 1
        assert frame["encoding"] == encoding
        assert frame["headerLength"] == 32  # 24 + 7 bytes of id, padded to 4
        assert frame["sampleRate"] == (8000 if "law" in encoding else 24000)
        assert frame["sampleOffset"] == 2**33 + 5
        assert (frame["sequence"], frame["segment"], frame["flags"]) == (9, 3, 3)
        assert frame["contextId"] == "ctx-é7"
        floats = np.array(frame["floats"])
        # G.711 keeps about 4 bits of mantissa: within 1/16 of the value (plus a small step).
        tolerance = 1e-6 if encoding.startswith("pcm") else np.abs(pcm / 32768) / 16 + 2e-3
        assert np.all(np.abs(floats - pcm / 32768) <= tolerance), encoding
    assert parsed["pcm_s16le"]["kind"] == "Int16Array"
    assert parsed["pcm_s16le"]["samples"] == pcm.tolist()
    assert parsed["pcm_f32le"]["kind"] == "Float32Array"
    assert parsed["mulaw"]["kind"] == parsed["alaw"]["kind"] == "Uint8Array"


async def test_speak_plays_exactly_what_the_server_sent(browser: Browser, web_server: ServerProcess,
                                                        tmp_path: Path) -> None:
    opened = await open_player(browser, web_server)
    page = opened.page
    await page.select_option("#voice", "leo")
    await set_max_tokens(page, SHORT)
    await page.fill("#text", "Hello there.")
    await page.click("#speak")

    await wait_for(page, "d.lastDone !== null")
    await wait_for(page, "d.workletReceivedSamples === d.lastDone.samples")
    d = await debug(page)
    done = d["lastDone"]
    assert done["segments"] == 1
    assert done["samples"] == done["frames"] * 2048 == SHORT // 7 * 2048
    assert d["samplesReceived"] == done["samples"]
    assert d["samplesEnqueuedToWorklet"] == done["samples"]
    assert d["workletReceivedSamples"] == done["samples"]
    assert d["gaps"] == 0 and d["droppedFrames"] == 0
    assert [m["type"] for m in d["sent"]] == ["text"]
    assert d["sent"][0]["end"] is True and d["sent"][0]["voice"] == "leo"
    assert d["sent"][0]["max_tokens"] == SHORT
    assert d["ttfaMs"] > 0

    # Everything plays out, without a sample more.
    await wait_for(page, "d.played === d.lastDone.samples && d.workletQueuedSamples === 0")
    await expect(page.locator("#chunks")).to_have_text(str(d["framesReceived"]))
    await expect(page.locator("#seconds")).to_have_text(f"{done['samples'] / 24000:.2f} s")
    # Math.round rounds a half up; Python's round() to even (516.5 -> 516, not 517)
    await expect(page.locator("#ttfa")).to_have_text(f"{math.floor(d['ttfaMs'] + 0.5)} ms")
    await expect(page.locator("#stop")).to_be_disabled()

    async with page.expect_download() as download_info:
        await page.click("#download")
    download = await download_info.value
    assert download.suggested_filename.startswith("orpheus-leo-")
    path = tmp_path / "utterance.wav"
    await download.save_as(path)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        assert wav.getnframes() == done["samples"]
        assert np.abs(np.frombuffer(wav.readframes(wav.getnframes()), "<i2")).max() > 0
    assert opened.console_errors == []


async def test_stop_mid_utterance_silences_at_once_and_the_next_one_plays(
        browser: Browser, web_server: ServerProcess, tmp_path: Path) -> None:
    opened = await open_player(browser, web_server)
    page = opened.page
    await set_max_tokens(page, LONG)
    await page.fill("#text", "This is a long story that goes on and on, far longer than anyone "
                             "would care to listen to, so the listener will interrupt it.")
    await page.click("#speak")
    # Mid-utterance: half a second played and more audio waiting in the worklet.
    await wait_for(page, "d.played > 12000 && d.workletQueuedSamples > 0")
    with contextlib.suppress(PlaywrightTimeoutError):  # for the picture: a fuller buffer
        await wait_for(page, "d.workletQueuedSamples > 4800", timeout=3.0)
    await save_screenshot(page, tmp_path)
    assert not await page.is_disabled("#stop")

    await page.click("#stop")
    await wait_for(page, "d.lastInterruptPlayed !== null")
    d = await debug(page)
    played_at_stop = d["lastInterruptPlayed"]
    received_at_stop = d["samplesReceived"]
    assert d["workletQueuedSamples"] == 0
    assert d["lastDone"] is None, "the utterance should have been cut mid-generation"

    await wait_for(page, "d.lastCancelled !== null")
    await asyncio.sleep(scaled(0.3))  # frames in flight, if any, have arrived by now
    d = await debug(page)
    # Every frame the server sent before "cancelled" either arrived before Stop or was dropped.
    assert d["lastCancelled"]["samples_sent"] == received_at_stop + d["droppedSamples"]
    assert d["played"] == played_at_stop  # nothing played after the interrupt
    assert d["samplesReceived"] == received_at_stop  # late frames of the context were dropped
    assert d["workletQueuedSamples"] == 0 and d["rejected"] == 0
    assert d["samplesEnqueuedToWorklet"] == d["workletReceivedSamples"] == received_at_stop
    await expect(page.locator("#stop")).to_be_disabled()
    await expect(page.locator("#error")).to_be_hidden()

    # The next utterance plays in full.
    await set_max_tokens(page, SHORT)
    await page.fill("#text", "Sorry, go on.")
    await page.click("#speak")
    await wait_for(page, "d.lastDone !== null && d.played === d.lastDone.samples")
    d = await debug(page)
    assert d["lastDone"]["samples"] == d["samplesReceived"] == d["workletReceivedSamples"]
    assert d["lastCancelled"] is None and d["rejected"] == 0
    assert opened.console_errors == []


async def save_screenshot(page: Page, tmp_path: Path) -> None:
    """The page mid-utterance, in the test's folder and in test-output/ (git-ignored)."""
    path = tmp_path / "web_client.png"
    await page.screenshot(path=path)
    (REPO / "test-output").mkdir(exist_ok=True)
    shutil.copyfile(path, REPO / "test-output" / "web_client.png")


async def test_speak_as_you_type_starts_audio_before_typing_ends(
        browser: Browser, web_server: ServerProcess) -> None:
    opened = await open_player(browser, web_server)
    page = opened.page
    await set_max_tokens(page, SHORT)
    await page.fill("#text", "")
    await page.check("#type-mode")
    await page.focus("#text")
    # Typing goes on, a word at a time, until the first words are heard (however fast this
    # machine is); then the last word and Enter.
    typed = ""
    for word in TYPED_TEXT.split(" "):
        await page.keyboard.type(word + " ", delay=50)
        typed += word + " "
        if len(typed) > 30 and (await debug(page))["played"] > 0:
            break
    d = await debug(page)
    assert d["played"] > 0, "audio should play while the text is still being typed"
    texts = [m["text"] for m in d["sent"]]
    assert texts == [word + " " for word in typed.split(" ")[:-1]]  # a message per word
    assert d["sent"][0]["max_tokens"] == SHORT and "end" not in d["sent"][0]

    await page.keyboard.type("Bye.", delay=50)
    await page.keyboard.press("Enter")
    await wait_for(page, "d.lastDone !== null")
    await wait_for(page, "d.workletReceivedSamples === d.lastDone.samples")
    d = await debug(page)
    assert d["sent"][-1] == {"type": "text", "context_id": d["contextId"], "text": "Bye.",
                             "end": True}
    assert d["lastDone"]["segments"] >= 2
    assert d["samplesReceived"] == d["lastDone"]["samples"]
    assert await page.input_value("#text") == ""  # ready for the next utterance
    assert opened.console_errors == []


async def test_invalid_option_is_shown_and_the_page_recovers(browser: Browser,
                                                             web_server: ServerProcess) -> None:
    opened = await open_player(browser, web_server)
    page = opened.page
    await page.fill("#temperature", "5")
    await page.fill("#max-tokens", str(SHORT))
    await page.fill("#text", "Too hot.")
    await page.click("#speak")
    error = page.locator("#error")
    await expect(error).to_contain_text("invalid_parameter: temperature")
    await expect(page.locator("#stop")).to_be_disabled()  # the context was never opened
    d = await debug(page)
    assert [(e["code"], e["field"]) for e in d["errors"]] == [("invalid_parameter", "temperature")]

    await page.fill("#temperature", "0.6")
    await page.click("#speak")
    await expect(error).to_be_hidden()
    await wait_for(page, "d.lastDone !== null && d.workletReceivedSamples === d.lastDone.samples")
    assert (await debug(page))["sent"][0]["temperature"] == 0.6
    assert opened.console_errors == []


async def test_server_error_is_shown(browser: Browser, web_server: ServerProcess,
                                     standin: StandinLLMServer, snac_dir: Path,
                                     tmp_path: Path) -> None:
    """A second server, typed into the URL field, whose LLM backend refuses every request."""
    standin.config.fault = "refuse"
    failing = ServerProcess(lambda port: serve_command(port, standin.url, snac_dir),
                            tmp_path / "refusing_server.log")
    await failing.start()  # async: the stand-in keeps serving on this loop meanwhile
    try:
        opened = await open_player(browser, web_server)
        page = opened.page
        first_session = (await page.evaluate("window.orpheusDebug.ready"))["session_id"]
        await page.fill("#server-url", failing.ws_url)
        await page.click("#connect")
        await wait_for(page, f"d.ready !== null && d.ready.session_id !== '{first_session}'")
        await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        await page.fill("#text", "Is anybody there?")
        await page.click("#speak")
        error = page.locator("#error")
        await expect(error).to_be_visible()
        await expect(error).to_contain_text("backend_unavailable")
        d = await debug(page)
        assert [e["code"] for e in d["errors"]] == ["backend_unavailable"]
        assert d["errors"][0]["context_id"] == d["contextId"]
        assert d["samplesReceived"] == 0
        await expect(page.locator("#stop")).to_be_disabled()
        assert opened.console_errors == []
    finally:
        await failing.stop()


async def test_the_key_field_opens_a_server_that_needs_a_key(browser: Browser,
                                                              standin: StandinLLMServer,
                                                              snac_dir: Path,
                                                              tmp_path: Path) -> None:
    """The page of a server with API keys loads without one; its socket is refused until the
    key is typed in, then speaks; the key travels in the handshake's subprotocols, not the
    URL."""
    standin.config.frames = 4
    keyed = ServerProcess(lambda port: serve_command(
        port, standin.url, snac_dir, "--codec", "passthrough", "--api-key", "browser-key"),
        tmp_path / "keyed_server.log")
    await keyed.start()
    try:
        opened = await browser.open(f"{keyed.url}/client")
        page = opened.page
        await expect(page.locator("#status")).to_have_attribute("data-state", "disconnected")
        await page.fill("#api-key", "browser-key")
        await page.click("#connect")
        await wait_for(page, "d.ready !== null")
        await page.fill("#text", "Hello there.")
        await page.click("#speak")
        await wait_for(page, "d.lastDone !== null")
        d = await debug(page)
        assert d["lastDone"]["samples"] == d["samplesReceived"] == 4 * 2048
        voices = await page.eval_on_selector_all("#voice option", "os => os.map(o => o.value)")
        assert voices  # /api/voices took the key too
    finally:
        await keyed.stop()
    assert "browser-key" not in keyed.log_tail(500)  # never logged
