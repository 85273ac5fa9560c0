// Counts the frames the audio graph rendered from the remote track, and those that were
// not silent: the playground's fallback playout position when getStats has none.
class FrameCounter extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frames = 0;
    this.nonSilentFrames = 0;
    this.sincePost = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length > 0) {
      const samples = channels[0];
      this.frames += samples.length;
      for (let i = 0; i < samples.length; i++) {
        if (samples[i] !== 0) this.nonSilentFrames += 1;
      }
      this.sincePost += samples.length;
      if (this.sincePost >= sampleRate / 100) {
        this.sincePost = 0;
        this.port.postMessage({
          frames: this.frames, sampleRate: sampleRate, nonSilentFrames: this.nonSilentFrames,
        });
      }
    }
    return true;
  }
}

registerProcessor("frame-counter", FrameCounter);
