// The playground page: one session per tab. Audio arrives over WebRTC; what to say, the
// interrupt, the captions and the reports go over the tab's WebSocket. Every 50 ms the
// page sends its receiver stats on the "receiver-stats" data channel, copied verbatim from
// getStats(), so the server's position is what this browser played.
"use strict";

const REPORT_INTERVAL_MS = 50;
const INBOUND_FIELDS = [
  "totalSamplesReceived", "concealedSamples", "silentConcealedSamples", "concealmentEvents",
  "insertedSamplesForDeceleration", "removedSamplesForAcceleration", "jitterBufferDelay",
  "jitterBufferEmittedCount", "jitterBufferTargetDelay", "packetsReceived", "packetsLost",
  "packetsDiscarded", "audioLevel", "totalAudioEnergy",
];
const PLAYOUT_FIELDS = [
  "totalSamplesCount", "totalSamplesDuration", "synthesizedSamplesDuration",
  "synthesizedSamplesEvents", "totalPlayoutDelay",
];
const KEPT = 2000;

// What the page saw, for a reader of the page (and the tests): its own stats, each caption
// with the stats the page had sent when it showed it, and each item's report.
const state = {
  session: null, error: null, seq: 0, lastReport: null, reports: [], captions: [], items: {},
  worklet: null, marks: {},
};
window.playground = state;

const $ = (id) => document.getElementById(id);
let socket = null;
let pc = null;
let channel = null;
let counter = null;
let audioContext = null;
let reporting = false;
let again = false;

// The frame the page's audio graph renders now: the worklet posts every 10 ms, so a caption
// reads its count and how far the graph has gone since that post.
function contextFrame() {
  return audioContext ? Math.round(audioContext.currentTime * audioContext.sampleRate) : null;
}

function status(text) { $("status").textContent = text; }

function copy(stats, fields) {
  if (!stats) return null;
  const out = {};
  for (const name of fields) if (stats[name] !== undefined) out[name] = stats[name];
  return out;
}

async function receiverReport() {
  let inbound = null;
  let playout = null;
  if (pc) {
    const stats = await pc.getStats();
    const playouts = {};
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") inbound = s;
      if (s.type === "media-playout") playouts[s.id] = s;
    });
    const chosen = inbound && inbound.playoutId ? playouts[inbound.playoutId] : null;
    playout = chosen || Object.values(playouts)[0] || null;
  }
  const report = {
    type: "receiver-report", seq: state.seq++, at_ms: performance.now(),
    inbound: copy(inbound, INBOUND_FIELDS), playout: copy(playout, PLAYOUT_FIELDS),
    worklet: state.worklet ? {
      frames: state.worklet.frames, sampleRate: state.worklet.sampleRate,
      nonSilentFrames: state.worklet.nonSilentFrames,
    } : null,
  };
  return report;
}

async function sendReport() {
  // One getStats at a time: two in flight could resolve out of order and send an older
  // count after a newer one. A request meanwhile is answered by one more report after.
  if (reporting) { again = true; return; }
  reporting = true;
  try {
    do {
      again = false;
      if (!channel || channel.readyState !== "open") return;
      const report = await receiverReport();
      if (channel.readyState !== "open") return;
      channel.send(JSON.stringify(report));
      noteReport(report);
    } while (again);
  } finally {
    reporting = false;
  }
}

function noteReport(report) {
  state.lastReport = report;
  state.reports.push(report);
  if (state.reports.length > KEPT) state.reports.splice(0, state.reports.length - KEPT);
}

function gathered(connection) {
  if (connection.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (connection.iceGatheringState === "complete") {
        connection.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
    };
    connection.addEventListener("icegatheringstatechange", check);
  });
}

async function countFrames(stream) {
  try {
    const context = new AudioContext({ sampleRate: 48000 });
    audioContext = context;
    await context.audioWorklet.addModule("/static/counter-worklet.js");
    counter = new AudioWorkletNode(context, "frame-counter");
    const mute = context.createGain();
    mute.gain.value = 0;
    context.createMediaStreamSource(stream).connect(counter).connect(mute)
      .connect(context.destination);
    counter.port.onmessage = (event) => { state.worklet = event.data; };
    await context.resume();
  } catch (error) {
    console.warn("no AudioWorklet count:", error);
  }
}

async function connect(sessionId) {
  pc = new RTCPeerConnection();
  pc.addTransceiver("audio", { direction: "recvonly" });
  channel = pc.createDataChannel("receiver-stats", { ordered: true });
  channel.onopen = () => { setInterval(sendReport, REPORT_INTERVAL_MS); };
  channel.onmessage = (event) => {
    let message = null;
    try { message = JSON.parse(event.data); } catch (error) { return; }
    if (message && message.type === "report-now") sendReport();
  };
  pc.ontrack = (event) => {
    const stream = event.streams[0] || new MediaStream([event.track]);
    const audio = $("voice");
    audio.srcObject = stream;
    audio.play().catch((error) => status(`audio blocked: ${error.message}`));
    countFrames(stream);
  };
  pc.onconnectionstatechange = () => { ready(); };
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const response = await fetch(`/session/${sessionId}/offer`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  await pc.setRemoteDescription(answer);
}

function ready() {
  // Speak needs only the connection: the server charges an item with the packets this
  // browser dropped while it played the item, so its start-up concealment is no item's.
  const connected = pc !== null && pc.connectionState === "connected";
  status(`session ${state.session}: ${connected ? "ready" : pc.connectionState}`);
  $("speak").disabled = !connected;
  $("interrupt").disabled = !connected;
}

function showCaption(message) {
  const box = $("captions");
  box.classList.remove("cut");
  box.querySelector(".heard").textContent = message.heard;
  box.querySelector(".rest").textContent = message.rest;
  state.captions.push({
    ...message, shown_ms: performance.now(), browser: state.lastReport,
    worklet: state.worklet ? { ...state.worklet, contextFrame: contextFrame() } : null,
  });
  if (state.captions.length > KEPT) state.captions.splice(0, state.captions.length - KEPT);
}

function row(name, value) {
  const tr = document.createElement("tr");
  const th = document.createElement("th");
  const td = document.createElement("td");
  th.textContent = name;
  td.textContent = value;
  tr.append(th, td);
  return tr;
}

function showReport(message) {
  state.items[message.item_id] = { ...message, browser: state.lastReport };
  const rate = message.sample_rate;
  const ms = (samples) => `${samples} (${(samples * 1000 / rate).toFixed(1)} ms)`;
  const settled = message.settlement;
  const confirmed = message.position_confirmed;
  let confirmation = "yes: the browser's stats covered the cut";
  if (!message.interrupted) confirmation = "not needed: played to the end";
  else if (confirmed === false) confirmation = "NO: the browser did not say; the sent count stands";
  else if (confirmed !== true) confirmation = "not settled: the sent count stands";
  const table = $("report");
  table.replaceChildren(
    row("outcome", message.interrupted ? "interrupted" : "completed"),
    row("heard samples (48 kHz)", ms(message.heard_samples)),
    row("sent samples", ms(settled ? settled.sent : message.sent_samples)),
    row("confirmed by the browser", confirmation),
    row("lost or discarded (20 ms a packet)", settled ? `${settled.lost} samples` : "-"),
    row("heard text", message.heard_text || "(nothing)"),
    row("sent → played delay", `median ${message.delay.median_ms?.toFixed(1) ?? "-"} ms,` +
      ` max ${message.delay.max_ms?.toFixed(1) ?? "-"} ms (${message.delay.count} samples)`),
  );
  if (message.error) table.append(row("error", message.error));
  $("truncate").textContent = message.truncation
    ? JSON.stringify(message.truncation) : "no truncation: the whole item was heard";
  $("report-item").textContent = message.item_id;
  if (message.plot) $("plot").src = message.plot;
  else $("plot").removeAttribute("src");
  $("report-box").hidden = false;
  if (message.interrupted) $("captions").classList.add("cut");
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function speak() {
  const text = $("text").value.trim();
  if (text) send({ type: "speak", text });
}

function interrupt() { send({ type: "interrupt" }); }

function start() {
  socket = new WebSocket(`ws://${location.host}/session`);
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "hello") {
      state.session = message.session;
      state.mode = message.mode;
      if (message.mode === "realtime") {
        document.querySelector("label[for=text]").textContent =
          "Instructions for the realtime model's next response";
      }
      for (const text of message.responses) {
        const button = document.createElement("button");
        button.textContent = text.length > 48 ? `${text.slice(0, 46)}…` : text;
        button.title = text;
        button.onclick = () => { $("text").value = text; };
        $("canned").append(button);
      }
      $("text").value = message.responses[0];
      connect(message.session).catch((error) => {
        state.error = error.message;
        status(`cannot connect: ${error.message}`);
      });
    } else if (message.type === "caption") {
      showCaption(message);
    } else if (message.type === "report") {
      showReport(message);
    } else if (message.type === "item-started") {
      // the worklet notes where this item's sound begins and ends in what it renders
      if (counter) counter.port.postMessage({ type: "mark" });
      state.marks[message.item_id] = state.worklet ? state.worklet.frames : null;
      $("captions").classList.remove("cut");
      $("captions").querySelector(".heard").textContent = "";
      $("captions").querySelector(".rest").textContent = "";
    } else if (message.type === "model") {
      status(`session ${state.session}: ready (realtime model ${message.state})`);
    } else if (message.type === "error") {
      state.error = message.message;
      status(`error: ${message.message}`);
    }
  };
  socket.onclose = () => {
    status("disconnected: reload the page for a new session");
    $("speak").disabled = true;
    $("interrupt").disabled = true;
  };
  $("speak").onclick = speak;
  $("interrupt").onclick = interrupt;
  document.addEventListener("keydown", (event) => {
    if (event.code === "Space" && event.target.tagName !== "TEXTAREA") {
      event.preventDefault();
      interrupt();
    }
  });
  document.addEventListener("keyup", (event) => {  // a focused button would click on space
    if (event.code === "Space" && event.target.tagName !== "TEXTAREA") event.preventDefault();
  });
}

start();
