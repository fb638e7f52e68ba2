// AudioWorkletProcessor that plays a queue of Float32 blocks (mono) with a small jitter buffer.
//
// Messages in (port.postMessage):
//   {type: "begin"}                  a new utterance: queue emptied, counters zeroed
//   {type: "push", samples}          append a Float32Array (transfer its buffer)
//   {type: "end"}                    no more audio for this utterance: play out what is queued
//                                    even if it is shorter than the jitter buffer
//   {type: "interrupt", id}          drop everything queued now (and anything pushed until the
//                                    next "begin"); answered by
//                                    {type: "interrupted", id, played, dropped}
//   {type: "jitter", samples}        change the jitter buffer
// Messages out:
//   {type: "stats", received, played, queued, underruns, level, playing, rejected}  every ~20 ms
//   {type: "drained"}                the utterance's last sample was played
//
// Playback starts once `jitterSamples` are queued (or at "end"). When the queue runs dry while
// more audio is expected, that is an underrun: silence is played and the jitter buffer refills.

const STATS_EVERY_BLOCKS = 4; // 4 x 128 samples: about 21 ms at 24 kHz

class OrpheusPlayerProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.jitterSamples = opts.jitterSamples ?? Math.round(sampleRate * 0.1);
    this.reset();
    this.blocks = 0;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  reset() {
    this.queue = []; // Float32Array blocks
    this.readIndex = 0; // position in queue[0]
    this.queued = 0;
    this.received = 0;
    this.played = 0;
    this.underruns = 0;
    this.level = 0;
    this.playing = false;
    this.ended = false;
    this.drained = false;
    this.interrupted = false;
    this.rejected = 0; // samples pushed after an interrupt (stale audio), not played
  }

  onMessage(message) {
    switch (message.type) {
      case "begin":
        this.reset();
        break;
      case "push":
        if (this.interrupted) {
          this.rejected += message.samples.length;
          break;
        }
        this.queue.push(message.samples);
        this.queued += message.samples.length;
        this.received += message.samples.length;
        this.drained = false;
        break;
      case "end":
        this.ended = true;
        break;
      case "interrupt": {
        const dropped = this.queued;
        this.queue = [];
        this.readIndex = 0;
        this.queued = 0;
        this.playing = false;
        this.ended = true;
        this.drained = true;
        this.interrupted = true;
        const { id } = message;
        this.port.postMessage({ type: "interrupted", id, played: this.played, dropped });
        this.postStats();
        break;
      }
      case "jitter":
        this.jitterSamples = message.samples;
        break;
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    let written = 0;
    if (!this.playing && this.queued > 0 && (this.queued >= this.jitterSamples || this.ended)) {
      this.playing = true;
    }
    if (this.playing) {
      while (written < out.length && this.queue.length > 0) {
        const head = this.queue[0];
        const n = Math.min(out.length - written, head.length - this.readIndex);
        out.set(head.subarray(this.readIndex, this.readIndex + n), written);
        written += n;
        this.readIndex += n;
        if (this.readIndex === head.length) {
          this.queue.shift();
          this.readIndex = 0;
        }
      }
      this.queued -= written;
      this.played += written;
      if (this.queued === 0 && this.ended) {
        this.playing = false;
        if (!this.drained) this.port.postMessage({ type: "drained", played: this.played });
        this.drained = true;
      } else if (written < out.length) {
        this.underruns += 1; // more audio is due but none is here: the listener hears a gap
        this.playing = false; // refill the jitter buffer before going on
      }
    }
    out.fill(0, written);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    let sum = 0;
    for (let i = 0; i < written; i++) sum += out[i] * out[i];
    const rms = Math.sqrt(sum / out.length);
    this.level = Math.max(rms, this.level * 0.9); // fast attack, slow release
    if (++this.blocks % STATS_EVERY_BLOCKS === 0) this.postStats();
    return true;
  }

  postStats() {
    this.port.postMessage({
      type: "stats",
      received: this.received,
      played: this.played,
      queued: this.queued,
      underruns: this.underruns,
      level: this.level,
      playing: this.playing,
      rejected: this.rejected,
    });
  }
}

registerProcessor("orpheus-player", OrpheusPlayerProcessor);
