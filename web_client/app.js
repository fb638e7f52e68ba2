// The page: wires the text box, the settings and the meters to the protocol client
// (ws-client.js) and the player (player.js). One utterance plays at a time; starting a new one
// or pressing Stop cancels the current one (barge-in).

import { OrpheusSocket, defaultServerUrl, httpBaseUrl, isContextFailure } from "./ws-client.js";
import { Player } from "./player.js";
import { drawWaveform } from "./scope.js";
import { wavBlob } from "./wav.js";
import {
  $, commonPrefix, fillEmotionTags, fillVoices, hideError, log, setStatus, showError, splitText,
} from "./ui.js";

const SAMPLE_RATE = 24000;
const FORMAT = { encoding: "pcm_s16le", sample_rate: SAMPLE_RATE };

const player = new Player({ sampleRate: SAMPLE_RATE, jitterMs: Number($("jitter").value) });
let socket = null;
let limits = { max_text_chars: 5000 };
/** The utterance being spoken or last spoken: {id, voice, sentAt, firstAudioAt, pcm, ...}. */
let current = null;
/** Speak-as-I-type: the context being typed into and the part of the text already sent. */
const typing = { contextId: null, sent: "" };
/** Speak, Stop and typed words run one after another, in the order they happened. */
let actions = Promise.resolve();
function serially(action) {
  const run = actions.then(action);
  actions = run.catch(() => {});
  return run;
}

/** Counters for tests and for the curious (window.orpheusDebug in the console). */
const debug = {
  contextId: null,
  samplesReceived: 0, // from the socket, for the last context
  framesReceived: 0,
  samplesEnqueuedToWorklet: 0,
  workletReceivedSamples: 0, // as reported by the worklet itself
  workletQueuedSamples: 0,
  played: 0,
  underruns: 0,
  rejected: 0, // samples the worklet refused after an interrupt (stale audio)
  ttfaMs: null,
  lastDone: null,
  lastCancelled: null,
  lastInterruptPlayed: null,
  errors: [],
  sent: [], // client messages of the last context
  ready: null,
};
// From the protocol client's bookkeeping of the last context: frames it dropped after sending
// cancel, and gaps in sample_offset (protocol.md: never).
for (const name of ["droppedFrames", "droppedSamples", "gaps"]) {
  Object.defineProperty(debug, name, {
    enumerable: true,
    get: () => (current && socket?.contexts.get(current.id)?.[name]) ?? 0,
  });
}
window.orpheusDebug = debug;

// -- connection ------------------------------------------------------------------------------

async function connect() {
  const url = $("server-url").value.trim();
  const apiKey = $("api-key").value.trim();
  if (socket) socket.close();
  const s = new OrpheusSocket(url, apiKey);
  socket = s;
  listen(s);
  setStatus("connecting", "connecting…");
  loadVoices(url, apiKey);
  let ready;
  try {
    ready = await s.connect();
  } catch (error) {
    if (s === socket) { // not replaced by a newer connect meanwhile
      setStatus("disconnected");
      showError(error.message);
    }
    throw error;
  }
  debug.ready = ready;
  limits = ready.limits;
  setStatus("connected", `connected · ${ready.session_id}`);
  fillVoices(ready.voices, ready.defaults.voice);
  fillEmotionTags(ready.emotion_tags);
  applyDefaults(ready.defaults);
  hideError();
}

async function ensureConnected() {
  if (!socket || !socket.isOpen) await connect();
}

async function loadVoices(wsUrl, apiKey) {
  try {
    const headers = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
    const response = await fetch(`${httpBaseUrl(wsUrl)}/api/voices`, { headers });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const body = await response.json();
    fillVoices(body.voices, body.default);
    fillEmotionTags(body.emotion_tags);
  } catch (error) {
    log("voices", `/api/voices failed: ${error.message}`, true);
  }
}

let defaultsApplied = false;
function applyDefaults(defaults) {
  if (defaultsApplied) return; // keep what the user chose
  defaultsApplied = true;
  $("temperature").value = defaults.temperature;
  $("top-p").value = defaults.top_p;
  $("repetition-penalty").value = defaults.repetition_penalty;
  $("max-tokens").value = defaults.max_tokens;
  $("buffer-delay").value = defaults.buffer_delay_ms;
}

function options() {
  return {
    voice: $("voice").value,
    temperature: Number($("temperature").value),
    top_p: Number($("top-p").value),
    repetition_penalty: Number($("repetition-penalty").value),
    max_tokens: Number($("max-tokens").value),
    buffer_delay_ms: Number($("buffer-delay").value),
    // The player's jitter buffer: the server then knows how much audio we hold (protocol.md).
    client_buffer_ms: Number($("jitter").value),
    format: FORMAT,
  };
}

// -- server events ---------------------------------------------------------------------------

function listen(s) {
  s.addEventListener("audio", (e) => onAudio(e.detail));
  s.addEventListener("sent", (e) => {
    if (current && e.detail.context_id === current.id) debug.sent.push(e.detail);
  });
  s.addEventListener("event", (e) => onEvent(e.detail));
  s.addEventListener("invalid_message", (e) => {
    showError(`the server sent something this page can't read: ${e.detail.message}`);
  });
  s.addEventListener("close", (e) => {
    if (s !== socket) return;
    const { code, reason } = e.detail;
    setStatus("disconnected", code === 4000 ? "idle: reconnects on Speak" : "disconnected");
    player.end(); // what arrived still plays out
    log("close", `${code} ${reason}`, code !== 1000 && code !== 4000);
    updateButtons();
  });
}

function onAudio(frame) {
  if (!current || frame.contextId !== current.id) return;
  const samples = frame.samples.slice(); // own copy: kept for the WAV download
  if (current.firstAudioAt === null) {
    current.firstAudioAt = performance.now();
    debug.ttfaMs = current.firstAudioAt - current.sentAt;
    $("ttfa").textContent = `${Math.round(debug.ttfaMs)} ms`;
  }
  current.pcm.push(samples);
  debug.samplesReceived += samples.length;
  debug.framesReceived += 1;
  player.enqueue(samples);
  debug.samplesEnqueuedToWorklet = player.enqueued;
  $("chunks").textContent = debug.framesReceived;
  $("seconds").textContent = `${(debug.samplesReceived / SAMPLE_RATE).toFixed(2)} s`;
  $("download").disabled = false;
}

function onEvent(event) {
  const mine = current && event.context_id === current.id;
  switch (event.type) {
    case "segment_started":
      if (mine) $("now-speaking").textContent = event.text;
      log(event.type, `#${event.segment} “${event.text}”`);
      break;
    case "segment_finished":
      log(event.type, `#${event.segment} ${event.samples} samples, ttfa ${event.ttfa_ms} ms`);
      break;
    case "warning":  // the runaway guard cut a segment; the context goes on
      log(event.type, `#${event.segment} ${event.code}: ${event.message}`, true);
      break;
    case "done":
      if (mine) {
        debug.lastDone = event;
        player.end();
      }
      log(event.type, `${event.samples} samples, ${event.segments} segments, ` +
          `server ttfa ${event.ttfa_ms} ms`);
      break;
    case "cancelled":
      debug.lastCancelled = event;
      log(event.type, `${event.samples_sent} samples sent`);
      break;
    case "error":
      debug.errors.push(event);
      // An idle socket closed by the server is no fault: the next Speak reconnects.
      if (event.code !== "idle_timeout") showError(`${event.code}: ${event.message}`);
      if (mine && isContextFailure(event.code)) player.end();
      log(event.type, `${event.code}: ${event.message}`, true);
      break;
    case "ready":
      log(event.type, `protocol ${event.protocol}, ${event.voices.length} voices`);
      break;
    case "context_started":
      log(event.type, `${event.context_id} voice ${event.options.voice}`);
      break;
    default:
      log(event.type, event.context_id ?? "");
  }
  if (mine || event.type === "ready") updateButtons();
}

// -- speaking --------------------------------------------------------------------------------

/** Cancels what is playing (if anything) and starts a new utterance; returns its context id. */
async function beginUtterance() {
  await player.start();
  await stopCurrent();
  hideError();
  const id = socket.newContextId();
  current = { id, voice: $("voice").value, sentAt: performance.now(), firstAudioAt: null,
              pcm: [] };
  player.begin();
  Object.assign(debug, { contextId: id, samplesReceived: 0, framesReceived: 0,
                         samplesEnqueuedToWorklet: 0, workletReceivedSamples: 0,
                         workletQueuedSamples: 0, played: 0, underruns: 0, rejected: 0,
                         ttfaMs: null, lastDone: null, lastCancelled: null,
                         lastInterruptPlayed: null, sent: [] });
  $("ttfa").textContent = "–";
  $("chunks").textContent = "0";
  $("seconds").textContent = "0.00 s";
  $("now-speaking").textContent = "";
  $("download").disabled = true;
  return id;
}

/** Stops the current utterance: cancel on the socket, drop the player's queue at once. */
async function stopCurrent() {
  if (!current) return;
  socket?.cancel(current.id); // no-op when the context has already finished
  debug.lastInterruptPlayed = await player.interrupt();
  if (typing.contextId === current.id) {
    typing.contextId = null;
    typing.sent = $("text").value; // what was typed so far counts as said
  }
  updateButtons();
}

async function speak() {
  const text = $("text").value;
  if (!text.trim()) {
    showError("Type some text first.");
    return;
  }
  try {
    await ensureConnected();
    const id = await beginUtterance();
    const pieces = splitText(text, limits.max_text_chars);
    pieces.forEach((piece, i) => {
      const last = i === pieces.length - 1;
      socket.sendText(id, piece, { options: i === 0 ? options() : {}, end: last });
    });
  } catch (error) {
    showError(error.message);
  }
  updateButtons();
}


// -- speak as I type: each completed word goes out as it is typed ----------------------------

function onTyped() {
  if (!$("type-mode").checked) return;
  const value = $("text").value;
  if (!value.startsWith(typing.sent)) typing.sent = commonPrefix(value, typing.sent);
  const pending = value.slice(typing.sent.length);
  const cut = Math.max(pending.lastIndexOf(" "), pending.lastIndexOf("\n"));
  if (cut < 0) return;
  const piece = pending.slice(0, cut + 1);
  typing.sent += piece;
  sendTyped(piece, false);
}

function onTypedEnter(event) {
  if (!$("type-mode").checked || event.key !== "Enter" || event.shiftKey) return;
  event.preventDefault();
  finishTyped();
  $("text").value = "";
  typing.sent = "";
}

/** Sends what is typed but not sent yet and ends the context. */
function finishTyped() {
  const value = $("text").value;
  const rest = value.startsWith(typing.sent) ? value.slice(typing.sent.length) : "";
  typing.sent = value;
  sendTyped(rest, true);
}

/** Sends typed text in order; opens a context on the first word, ends it on Enter. */
function sendTyped(piece, end) {
  return serially(async () => {
    try {
      const live = typing.contextId !== null && socket?.isLive(typing.contextId);
      if (!live) {
        if (!piece.trim()) return; // no context for whitespace alone
        await ensureConnected();
        typing.contextId = await beginUtterance();
        socket.sendText(typing.contextId, piece, { options: options(), end });
      } else {
        socket.sendText(typing.contextId, piece, { end });
      }
      if (end) typing.contextId = null;
    } catch (error) {
      showError(error.message);
    }
    updateButtons();
  });
}

// -- WAV download: the last utterance's 24 kHz int16 samples -----------------------------------

function download() {
  if (!current || current.pcm.length === 0) return;
  const url = URL.createObjectURL(wavBlob(current.pcm, SAMPLE_RATE));
  const link = document.createElement("a");
  link.href = url;
  link.download = `orpheus-${current.voice}-${current.id}.wav`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// -- meters ----------------------------------------------------------------------------------

player.addEventListener("stats", (e) => {
  const s = e.detail;
  Object.assign(debug, { workletReceivedSamples: s.received, workletQueuedSamples: s.queued,
                         played: s.played, underruns: s.underruns, rejected: s.rejected });
  $("played").textContent = `${(s.played / SAMPLE_RATE).toFixed(2)} s`;
  $("buffer").textContent = `${Math.round((s.queued * 1000) / SAMPLE_RATE)} ms`;
  $("underruns").textContent = s.underruns;
  const db = 20 * Math.log10(Math.max(s.level, 1e-5)); // -100 .. 0 dBFS
  $("level").style.height = `${Math.max(0, Math.min(100, ((db + 60) / 60) * 100))}%`;
});
player.addEventListener("drained", () => updateButtons());

// -- small UI helpers ------------------------------------------------------------------------

function updateButtons() {
  const active = current !== null && (socket?.isLive(current.id) || player.stats.queued > 0 ||
                                      player.stats.playing);
  $("stop").disabled = !active;
}


// -- wiring ----------------------------------------------------------------------------------

$("server-url").value = defaultServerUrl();
$("server-form").addEventListener("submit", (e) => {
  e.preventDefault();
  connect().catch(() => {}); // shown in #error
});
$("speak").addEventListener("click", () => serially(speak));
$("stop").addEventListener("click", () => serially(stopCurrent));
$("download").addEventListener("click", download);
$("text").addEventListener("input", onTyped);
$("text").addEventListener("keydown", onTypedEnter);
$("type-mode").addEventListener("change", () => {
  if ($("type-mode").checked) {
    typing.sent = $("text").value; // only what is typed from now on is spoken
    typing.contextId = null;
    $("text").focus();
  } else if (typing.contextId !== null) {
    finishTyped();
  }
});
$("jitter").addEventListener("change", () => player.setJitter(Number($("jitter").value)));
// Start the audio graph on the first gesture, so the first Speak does not wait for it.
for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, () => player.start().catch(() => {}), { once: true });
}
setInterval(updateButtons, 250);
drawWaveform($("scope"), player);
connect().catch(() => {});
