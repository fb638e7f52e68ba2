// Main-thread side of the PCM player: an AudioContext at the stream's rate (the browser
// resamples to the device) and the player-worklet.js processor behind it.
//
//   const player = new Player();
//   await player.start();              // after a user gesture: creates and resumes the context
//   player.begin();                    // a new utterance
//   player.enqueue(int16Samples);      // as frames arrive
//   player.end();                      // no more audio: play out the tail
//   const played = await player.interrupt();   // barge-in: silence within one audio block
//
// Events: "stats" (detail: {received, played, queued, underruns, level, playing, rejected}),
// "drained" (the utterance's last sample was played).

const WORKLET_URL = new URL("./player-worklet.js", import.meta.url);

export class Player extends EventTarget {
  /** @param {{sampleRate?: number, jitterMs?: number}} options */
  constructor({ sampleRate = 24000, jitterMs = 100 } = {}) {
    super();
    this.sampleRate = sampleRate;
    this.jitterMs = jitterMs;
    this.context = null;
    this.node = null;
    this.analyser = null;
    this.enqueued = 0; // samples handed to the worklet in this utterance
    this.stats = { received: 0, played: 0, queued: 0, underruns: 0, level: 0, playing: false,
                   rejected: 0 };
    this.pendingInterrupts = new Map();
    this.nextInterruptId = 1;
    this.starting = null;
  }

  /** Creates the AudioContext and loads the worklet (once); resumes a suspended context. */
  start() {
    if (!this.starting) this.starting = this.create();
    return this.starting.then(() => this.context.resume());
  }

  async create() {
    this.context = new AudioContext({ sampleRate: this.sampleRate, latencyHint: "interactive" });
    await this.context.audioWorklet.addModule(WORKLET_URL);
    this.node = new AudioWorkletNode(this.context, "orpheus-player", {
      numberOfInputs: 0,
      outputChannelCount: [1],
      processorOptions: { jitterSamples: this.msToSamples(this.jitterMs) },
    });
    this.node.port.onmessage = (event) => this.onMessage(event.data);
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 2048;
    this.node.connect(this.analyser);
    this.analyser.connect(this.context.destination);
  }

  get ready() {
    return this.node !== null;
  }

  msToSamples(ms) {
    return Math.round((ms * this.sampleRate) / 1000);
  }

  setJitter(ms) {
    this.jitterMs = ms;
    this.node?.port.postMessage({ type: "jitter", samples: this.msToSamples(ms) });
  }

  /** Starts a new utterance: empties the queue and zeroes the counters. */
  begin() {
    this.enqueued = 0;
    this.stats = { ...this.stats, received: 0, played: 0, queued: 0, underruns: 0,
                   playing: false, rejected: 0 };
    this.node?.port.postMessage({ type: "begin" });
  }

  /** Queues samples: an Int16Array (PCM s16) or a Float32Array in [-1, 1]. */
  enqueue(samples) {
    if (!this.node) throw new Error("Player.start() was not called");
    let floats;
    if (samples instanceof Float32Array) {
      floats = samples.slice();
    } else {
      floats = new Float32Array(samples.length);
      for (let i = 0; i < samples.length; i++) floats[i] = samples[i] / 32768;
    }
    this.enqueued += floats.length;
    this.node.port.postMessage({ type: "push", samples: floats }, [floats.buffer]);
  }

  /** No more audio for this utterance: what is queued plays even below the jitter buffer. */
  end() {
    this.node?.port.postMessage({ type: "end" });
  }

  /**
   * Drops all queued audio at once.
   * @returns {Promise<number>} the samples of this utterance that were played
   */
  interrupt() {
    if (!this.node) return Promise.resolve(0);
    const id = this.nextInterruptId++;
    return new Promise((resolve) => {
      this.pendingInterrupts.set(id, resolve);
      this.node.port.postMessage({ type: "interrupt", id });
    });
  }

  onMessage(message) {
    if (message.type === "stats") {
      const { type, ...stats } = message;
      this.stats = stats;
      this.dispatchEvent(new CustomEvent("stats", { detail: stats }));
    } else if (message.type === "interrupted") {
      this.pendingInterrupts.get(message.id)?.(message.played);
      this.pendingInterrupts.delete(message.id);
    } else if (message.type === "drained") {
      this.dispatchEvent(new CustomEvent("drained", { detail: message }));
    }
  }
}
