// A browser client for the orpheus_ws realtime protocol (protocol.md).
//
//   const socket = new OrpheusSocket("ws://127.0.0.1:9100/api/tts/ws");
//   const ready = await socket.connect();          // the "ready" event: voices, limits, ...
//   socket.addEventListener("audio", (e) => play(e.detail.samples));   // parsed frames
//   socket.addEventListener("done", (e) => console.log(e.detail));
//   const id = socket.newContextId();
//   socket.sendText(id, "Hello there, ", { options: { voice: "leo" } });  // opens the context
//   socket.sendText(id, "how are you?", { end: true });
//   socket.cancel(id);                               // barge-in: its audio stops here at once
//
// Every server event is dispatched as a CustomEvent named after its type ("ready",
// "context_started", "segment_started", "segment_finished", "flushed", "done", "cancelled",
// "error", "pong", "configured"), with the event object as `detail`; every binary frame as
// "audio" with the parsed frame (frame.js) as `detail`. "open" and "close" (detail {code,
// reason}) follow the socket. "sent" carries each message this client sends;
// "invalid_message" ({message}) a message from the server that could not be read.

import { parseFrame } from "./frame.js";

const FINAL_STATES = new Set(["done", "cancelled", "failed"]);
const MAX_TRACKED = 64; // finished contexts kept for their counters

export class OrpheusSocket extends EventTarget {
  /**
   * @param {string} url ws:// or wss:// URL of /api/tts/ws
   * @param {string} [apiKey] sent in the handshake as the subprotocol list ["token", key]
   *   (protocol.md, "Security"): a browser can't set headers on a WebSocket
   */
  constructor(url, apiKey = "") {
    super();
    this.url = url;
    this.apiKey = apiKey;
    this.ws = null;
    this.readyEvent = null;
    /** id -> {id, state, frames, samples, nextOffset, gaps, droppedFrames, droppedSamples,
     *         started, cancelSent};
     * state: open, ending, cancelling, done, cancelled, failed */
    this.contexts = new Map();
    this.droppedFrames = 0; // frames of cancelled or unknown contexts, never dispatched
    this.idCounter = 0;
    this.idPrefix = Math.random().toString(36).slice(2, 8);
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.readyEvent !== null;
  }

  /**
   * Opens the socket.
   * @returns {Promise<object>} the server's "ready" event
   */
  connect() {
    if (this.ws) this.close();
    this.readyEvent = null;
    return new Promise((resolve, reject) => {
      const ws = this.apiKey ? new WebSocket(this.url, ["token", this.apiKey])
                             : new WebSocket(this.url);
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      let settled = false;
      ws.onopen = () => this.emit("open", { url: this.url });
      ws.onmessage = (message) => {
        if (this.ws !== ws) return;
        try {
          if (typeof message.data !== "string") {
            this.onFrame(message.data);
            return;
          }
          const event = JSON.parse(message.data);
          if (event.type === "ready" && !settled) {
            settled = true;
            this.readyEvent = event;
            resolve(event);
          }
          this.onEvent(event);
        } catch (error) {
          this.emit("invalid_message", { message: error.message });
        }
      };
      ws.onclose = (close) => {
        if (this.ws === ws) {
          this.ws = null;
          this.readyEvent = null;
          this.failLiveContexts();
        }
        this.emit("close", { code: close.code, reason: close.reason, wasClean: close.wasClean });
        if (!settled) {
          settled = true;
          reject(new Error(`could not connect to ${this.url} (close code ${close.code})`));
        }
      };
      ws.onerror = () => {}; // the close event that follows carries what is known
    });
  }

  close(code = 1000) {
    const ws = this.ws;
    if (!ws) return;
    ws.close(code);
    this.ws = null;
    this.readyEvent = null;
    this.failLiveContexts();
  }

  /** A context id not used before on this client. */
  newContextId(prefix = "utt") {
    this.idCounter += 1;
    return `${prefix}-${this.idPrefix}-${this.idCounter}`;
  }

  /** Session defaults for contexts opened afterwards (protocol.md, `config`). */
  configure(options) {
    this.send({ type: "config", ...options });
  }

  /**
   * Appends text to a context; the first text of a new id opens it with `options`
   * (voice, temperature, top_p, repetition_penalty, max_tokens, format, buffering, ...).
   */
  sendText(contextId, text, { options = {}, flush = false, flushId = null, end = false } = {}) {
    let context = this.contexts.get(contextId);
    const message = { type: "text", context_id: contextId, text };
    if (!context || FINAL_STATES.has(context.state)) {
      context = this.track(contextId);
      Object.assign(message, options);
    }
    if (flush) message.flush = true;
    if (flushId !== null) message.flush_id = flushId;
    if (end) {
      message.end = true;
      context.state = "ending";
    }
    this.send(message);
    return contextId;
  }

  /** Speak what is buffered now; the server answers "flushed" with this flush id. */
  flush(contextId, flushId = null) {
    this.send({ type: "flush", context_id: contextId, flush_id: flushId });
  }

  /** No more text for this context; "done" follows its last frame. */
  end(contextId) {
    const context = this.contexts.get(contextId);
    if (context && context.state === "open") context.state = "ending";
    this.send({ type: "end", context_id: contextId });
  }

  /**
   * Stops a context now. From this call on, no frame of it is dispatched (protocol.md,
   * `cancel`: frames already on the way arrive before the "cancelled" event; they are dropped).
   * @returns {boolean} whether a cancel was sent (false: the context is not live)
   */
  cancel(contextId) {
    const context = this.contexts.get(contextId);
    if (!context || FINAL_STATES.has(context.state) || context.state === "cancelling") {
      return false;
    }
    context.state = "cancelling";
    context.cancelSent = true;
    this.send({ type: "cancel", context_id: contextId });
    return true;
  }

  ping(id = Date.now()) {
    this.send({ type: "ping", id });
  }

  /** Whether a context is open or ending (not final, not being cancelled). */
  isLive(contextId) {
    const context = this.contexts.get(contextId);
    return Boolean(context) && (context.state === "open" || context.state === "ending");
  }

  // -- internals ---------------------------------------------------------------------------

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      throw new Error("not connected");
    }
    this.ws.send(JSON.stringify(message));
    this.emit("sent", message);
  }

  track(contextId) {
    const context = { id: contextId, state: "open", frames: 0, samples: 0, nextOffset: 0,
                      gaps: 0, droppedFrames: 0, droppedSamples: 0, started: false,
                      cancelSent: false };
    this.contexts.delete(contextId); // a reused id goes to the end of the (insertion) order
    this.contexts.set(contextId, context);
    for (const [id, old] of this.contexts) { // forget the oldest finished contexts
      if (this.contexts.size <= MAX_TRACKED) break;
      if (FINAL_STATES.has(old.state)) this.contexts.delete(id);
    }
    return context;
  }

  onFrame(buffer) {
    const frame = parseFrame(buffer);
    const context = this.contexts.get(frame.contextId);
    if (!context || context.state === "cancelling" || FINAL_STATES.has(context.state)) {
      this.droppedFrames += 1;
      if (context) {
        context.droppedFrames += 1;
        context.droppedSamples += frame.samples.length;
      }
      return;
    }
    if (frame.sampleOffset !== context.nextOffset) context.gaps += 1; // never, per protocol.md
    context.nextOffset = frame.sampleOffset + frame.samples.length;
    context.frames += 1;
    context.samples += frame.samples.length;
    this.emit("audio", frame);
  }

  onEvent(event) {
    const context = event.context_id ? this.contexts.get(event.context_id) : undefined;
    if (event.type === "error" && event.code === "unknown_context" && context?.cancelSent) {
      return; // our cancel crossed the context's final event: not a fault
    }
    if (context) {
      if (event.type === "context_started") context.started = true;
      else if (event.type === "done") context.state = "done";
      else if (event.type === "cancelled") context.state = "cancelled";
      else if (event.type === "error" && (!context.started || isContextFailure(event.code))) {
        // An error before "context_started" means the opening message was refused (an
        // invalid option, say): the context was never opened (protocol.md, "Error codes").
        context.state = "failed";
      }
    }
    this.emit(event.type, event);
    this.emit("event", event);
  }

  failLiveContexts() {
    for (const context of this.contexts.values()) {
      if (!FINAL_STATES.has(context.state)) context.state = "failed";
    }
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** Error codes after which the context is FAILED (protocol.md, "Error codes"). */
export function isContextFailure(code) {
  return code.startsWith("backend_") || code === "decoder_error";
}

/** The WebSocket URL of the server that served this page: ws(s)://host/api/tts/ws. */
export function defaultServerUrl(location = window.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/tts/ws`;
}

/** The HTTP base URL of the server behind a ws(s):// URL (for /api/voices). */
export function httpBaseUrl(wsUrl) {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  return `${url.protocol}//${url.host}`;
}
