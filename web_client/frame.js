// The binary audio frame of the orpheus_ws protocol (protocol.md, "Binary audio frames").
//
// A standalone ES module: import { parseFrame } from "./frame.js" in any page.
//
//   offset size type field
//   0      1    u8   version: 1
//   1      1    u8   encoding: 0 pcm_s16le, 1 pcm_f32le, 2 mulaw, 3 alaw
//   2      2    u16  header_length: bytes before the audio (a multiple of 4)
//   4      4    u32  sample_rate (Hz)
//   8      8    u64  sample_offset: the first sample's position in the context's audio
//   16     4    u32  sequence: 0, 1, 2, ... per context
//   20     1    u8   flags: bit 0 first frame of a segment, bit 1 last frame of a segment
//   21     1    u8   context_id_length n (1-64)
//   22     2    u16  segment
//   24     n         context_id (UTF-8), then zeros up to header_length
// All integers are little-endian.

export const FRAME_VERSION = 1;
export const FIXED_HEADER_BYTES = 24;
export const ENCODINGS = ["pcm_s16le", "pcm_f32le", "mulaw", "alaw"];
export const BYTES_PER_SAMPLE = [2, 4, 1, 1];
export const FLAG_SEGMENT_START = 1;
export const FLAG_SEGMENT_END = 2;

const utf8 = new TextDecoder();

/**
 * Parses one binary WebSocket message.
 * @param {ArrayBuffer} buffer the message (binaryType "arraybuffer")
 * @returns {{version: number, encoding: string, headerLength: number, sampleRate: number,
 *   sampleOffset: number, sequence: number, flags: number, contextId: string, segment: number,
 *   samples: Int16Array|Float32Array|Uint8Array}}
 * samples: int16 for pcm_s16le, float32 for pcm_f32le, the G.711 bytes for mulaw and alaw
 * (decode them with toFloat32). They are views on `buffer`, not copies.
 * @throws {Error} when the message is not a frame of this protocol.
 */
export function parseFrame(buffer) {
  if (ArrayBuffer.isView(buffer)) {
    buffer = buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
  }
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength < FIXED_HEADER_BYTES) {
    throw new Error("audio frame shorter than its header");
  }
  const view = new DataView(buffer);
  const version = view.getUint8(0);
  const encodingId = view.getUint8(1);
  const headerLength = view.getUint16(2, true);
  const idLength = view.getUint8(21);
  if (version !== FRAME_VERSION) throw new Error(`unknown frame version ${version}`);
  if (encodingId >= ENCODINGS.length) throw new Error(`unknown encoding ${encodingId}`);
  if (headerLength % 4 !== 0 || headerLength < FIXED_HEADER_BYTES + idLength ||
      headerLength > buffer.byteLength) {
    throw new Error(`bad header length ${headerLength}`);
  }
  const bytesPerSample = BYTES_PER_SAMPLE[encodingId];
  const count = Math.floor((buffer.byteLength - headerLength) / bytesPerSample);
  const SampleArray = [Int16Array, Float32Array, Uint8Array, Uint8Array][encodingId];
  return {
    version,
    encoding: ENCODINGS[encodingId],
    headerLength,
    sampleRate: view.getUint32(4, true),
    sampleOffset: Number(view.getBigUint64(8, true)),
    sequence: view.getUint32(16, true),
    flags: view.getUint8(20),
    contextId: utf8.decode(new Uint8Array(buffer, FIXED_HEADER_BYTES, idLength)),
    segment: view.getUint16(22, true),
    samples: new SampleArray(buffer, headerLength, count),
  };
}

/** A frame's samples as float32 in [-1, 1], whatever its encoding. */
export function toFloat32(frame) {
  const { samples, encoding } = frame;
  if (encoding === "pcm_f32le") return samples;
  const out = new Float32Array(samples.length);
  if (encoding === "pcm_s16le") {
    for (let i = 0; i < samples.length; i++) out[i] = samples[i] / 32768;
  } else {
    const decode = encoding === "mulaw" ? mulawToLinear : alawToLinear;
    for (let i = 0; i < samples.length; i++) out[i] = decode(samples[i]) / 32768;
  }
  return out;
}

/** ITU-T G.711 mu-law byte -> 16-bit linear sample. */
export function mulawToLinear(byte) {
  const u = ~byte & 0xff;
  const magnitude = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
  return u & 0x80 ? 0x84 - magnitude : magnitude - 0x84;
}

/** ITU-T G.711 A-law byte -> 16-bit linear sample. */
export function alawToLinear(byte) {
  const a = byte ^ 0x55;
  const exponent = (a & 0x70) >> 4;
  let magnitude = ((a & 0x0f) << 4) + 8;
  if (exponent > 0) magnitude = (magnitude + 0x100) << (exponent - 1);
  return a & 0x80 ? magnitude : -magnitude;
}
