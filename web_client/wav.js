// A WAV file (RIFF, PCM 16-bit mono) from int16 chunks, built in the browser.

/**
 * @param {Int16Array[]} chunks the samples, in order
 * @param {number} sampleRate Hz
 * @returns {Blob} audio/wav
 */
export function wavBlob(chunks, sampleRate) {
  const samples = chunks.reduce((n, c) => n + c.length, 0);
  const header = new DataView(new ArrayBuffer(44));
  const text = (offset, ascii) => {
    for (let i = 0; i < ascii.length; i++) header.setUint8(offset + i, ascii.charCodeAt(i));
  };
  text(0, "RIFF");
  header.setUint32(4, 36 + samples * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  header.setUint32(16, 16, true); // fmt chunk size
  header.setUint16(20, 1, true); // PCM
  header.setUint16(22, 1, true); // mono
  header.setUint32(24, sampleRate, true);
  header.setUint32(28, sampleRate * 2, true); // byte rate
  header.setUint16(32, 2, true); // block align
  header.setUint16(34, 16, true); // bits per sample
  text(36, "data");
  header.setUint32(40, samples * 2, true);
  return new Blob([header, ...chunks], { type: "audio/wav" }); // Int16Array: little-endian here
}
