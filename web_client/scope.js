// The output waveform on a canvas, redrawn every animation frame from the player's
// AnalyserNode (the last 2048 samples that went to the speakers).

/**
 * @param {HTMLCanvasElement} canvas
 * @param {{analyser: AnalyserNode|null}} player drawn once its audio graph exists
 */
export function drawWaveform(canvas, player) {
  const g = canvas.getContext("2d");
  let wave = null;
  const draw = () => {
    const { width, height } = canvas;
    g.fillStyle = "#101828";
    g.fillRect(0, 0, width, height);
    g.strokeStyle = "#344054";
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(0, height / 2);
    g.lineTo(width, height / 2);
    g.stroke();
    if (player.analyser) {
      wave ??= new Float32Array(player.analyser.fftSize);
      player.analyser.getFloatTimeDomainData(wave);
      g.strokeStyle = "#818cf8";
      g.lineWidth = 2;
      g.beginPath();
      for (let i = 0; i < wave.length; i++) {
        const x = (i / (wave.length - 1)) * width;
        const y = height / 2 - wave[i] * (height / 2) * 0.95;
        if (i === 0) g.moveTo(x, y);
        else g.lineTo(x, y);
      }
      g.stroke();
    }
    requestAnimationFrame(draw);
  };
  requestAnimationFrame(draw);
}
