// Counts the frames the audio graph rendered from the remote track, and those that were
// not silent: the playground's fallback playout position when getStats has none. It also
// keeps where the sound of the latest item began and ended (frame indexes of its first and
// last non-zero sample since the page's "mark"), what the browser really rendered of it.
class FrameCounter extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frames = 0;
    this.nonSilentFrames = 0;
    this.first = null;
    this.last = null;
    this.sincePost = 0;
    this.port.onmessage = (event) => {
      if (event.data && event.data.type === "mark") {
        this.first = null;
        this.last = null;
      }
    };
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length > 0) {
      const samples = channels[0];
      for (let i = 0; i < samples.length; i++) {
        if (samples[i] !== 0) {
          this.nonSilentFrames += 1;
          if (this.first === null) this.first = this.frames + i;
          this.last = this.frames + i;
        }
      }
      this.frames += samples.length;
      this.sincePost += samples.length;
      if (this.sincePost >= sampleRate / 100) {
        this.sincePost = 0;
        this.port.postMessage({
          frames: this.frames, sampleRate: sampleRate, nonSilentFrames: this.nonSilentFrames,
          first: this.first, last: this.last, renderedTo: currentFrame + samples.length,
        });
      }
    }
    return true;
  }
}

registerProcessor("frame-counter", FrameCounter);
