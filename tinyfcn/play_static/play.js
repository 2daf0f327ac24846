// The tinyfcn playground: draw, send the 64x84 picture to the server, show what the nets find.
// Test hooks (kept stable): #draw, [data-variant] with data-digits (and data-miou on a
// sample), #sample; body[data-latency]: ms from the last change of the drawing to its
// results on screen, set once the results shown are those of the current drawing.
"use strict";

const W = 84, H = 64;          // M2NIST's canvas
const S = 4;                   // strokes are drawn at 4x, then averaged down: anti-aliased ink
const PEN = 2.6, ERASER = 7;   // widths in canvas pixels: MNIST's 1s hold 2.6 pixels of ink a row
const $ = (sel) => document.querySelector(sel);
const draw = $("#draw");
const hires = Object.assign(document.createElement("canvas"), { width: W * S, height: H * S });
const base = Object.assign(document.createElement("canvas"), { width: W, height: H });
let info, pixels = new Uint8Array(W * H), strokes = [], stroke = null, erasing = false;
let hasBase = false, dirty = false, busy = false, changedAt = 0, heatPicked = false, last = null;

async function api(path, body) {
  const init = body === undefined ? {} :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const answer = await fetch(path, init);
  const json = await answer.json();
  if (!answer.ok) throw new Error(json.error);
  return json;
}

// Drawing: every stroke is kept (undo), the picture is re-rendered from them.
function render() {
  const g = hires.getContext("2d", { willReadFrequently: true });
  g.fillStyle = "#000";
  g.fillRect(0, 0, W * S, H * S);
  g.imageSmoothingEnabled = false;           // a sample's pixels come back exactly
  if (hasBase) g.drawImage(base, 0, 0, W * S, H * S);
  g.lineCap = g.lineJoin = "round";
  for (const s of strokes) {
    g.strokeStyle = s.erase ? "#000" : "#fff";
    g.lineWidth = (s.erase ? ERASER : PEN) * S;
    g.beginPath();
    g.moveTo(s.points[0][0] * S, s.points[0][1] * S);
    for (const [x, y] of s.points) g.lineTo(x * S, y * S);
    g.stroke();
  }
  const hi = g.getImageData(0, 0, W * S, H * S).data;  // average each SxS block of red
  const shown = new ImageData(W, H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    let sum = 0;
    for (let dy = 0; dy < S; dy++) for (let dx = 0; dx < S; dx++)
      sum += hi[((y * S + dy) * W * S + x * S + dx) * 4];
    const v = pixels[y * W + x] = Math.round(sum / (S * S));
    shown.data.set([v, v, v, 255], (y * W + x) * 4);
  }
  draw.getContext("2d").putImageData(shown, 0, 0);
}

function changed() {
  changedAt = performance.now();
  delete document.body.dataset.latency;
  render();
  dirty = true;
  send();
}

// One request at a time: the latest drawing goes out as soon as the previous answer is in.
async function send() {
  if (busy || !dirty) return;
  busy = true;
  dirty = false;
  const since = changedAt, rows = [];
  for (let y = 0; y < H; y++) rows.push(Array.from(pixels.subarray(y * W, (y + 1) * W)));
  try {
    show(await api("/api/segment", rows));
    if (!dirty) document.body.dataset.latency = (performance.now() - since).toFixed(1);
  } catch (e) {
    $("#train-status").textContent = `error: ${e.message}`;
  }
  busy = false;
  send();
}

function paint(canvas, labels) {
  const img = new ImageData(W, H);
  labels.flat().forEach((c, i) => img.data.set(info.rgb[c], i * 4));
  canvas.getContext("2d").putImageData(img, 0, 0);
}

function show(answer, truth) {
  last = answer;
  $("#truth").hidden = !truth;
  if (truth) paint($("#truth canvas"), truth);
  for (const el of document.querySelectorAll(".result")) {
    const r = answer.results[el.dataset.variant];
    el.hidden = !r;
    if (!r) continue;
    paint(el.querySelector("canvas"), r.labels);
    el.dataset.digits = r.digits.join(" ");
    let text = r.digits.length ? `found ${r.digits.join(", ")}` : "no digit";
    if (r.mean_iou === undefined) delete el.dataset.miou;
    else {
      el.dataset.miou = r.mean_iou.toFixed(4);
      text += ` · pixel acc ${r.pixel_accuracy.toFixed(3)} · mIoU ${r.mean_iou.toFixed(3)}`;
    }
    el.querySelector(".found").textContent = text;
  }
  const found = answer.results.fcn1s.digits;
  if (!heatPicked && found.length) $("#heat-class").value = found[0];
  heat();
}

// The converted classifier's coarse scores: cell (i, j) is centred on pixel
// (offset + stride * i, offset + stride * j), over a faint copy of the drawing.
function heat() {
  if (!last) return;
  const g = $("#heatmap").getContext("2d"), h = last.heatmap, k = S;
  g.imageSmoothingEnabled = false;
  g.globalAlpha = 1;
  g.drawImage(draw, 0, 0, W * k, H * k);
  g.fillStyle = "rgba(0, 0, 0, 0.6)";
  g.fillRect(0, 0, W * k, H * k);
  const scores = h.scores[+$("#heat-class").value];
  g.fillStyle = "#fc3";
  scores.forEach((row, i) => row.forEach((p, j) => {
    g.globalAlpha = p / 255 * 0.85;
    const y = (h.offset + h.stride * (i - 0.5)) * k, x = (h.offset + h.stride * (j - 0.5)) * k;
    g.fillRect(x, y, h.stride * k, h.stride * k);
  }));
  g.globalAlpha = 1;
}

async function sample() {
  const answer = await api("/api/sample");
  const img = new ImageData(W, H);
  answer.image.flat().forEach((v, i) => img.data.set([v, v, v, 255], i * 4));
  base.getContext("2d").putImageData(img, 0, 0);
  hasBase = true;
  strokes = [];
  render();
  show(answer, answer.labels);
}

// Training: start, stop, and poll the curve while a run is going.
let shownPoints = 0;
async function poll() {
  const t = await api("/api/train");
  const running = t.state === "running";
  $("#train-start").disabled = running;
  $("#train-stop").disabled = !running;
  if (t.state !== "idle") $("#train-status").textContent = `${t.variant}, ${t.seconds} s: ${t.state}, ${t.message}`;
  if (t.curve.length && t.curve.length !== shownPoints) {   // a new net: segment again
    shownPoints = t.curve.length;
    $(".result[data-variant=trained] .name").textContent = `your ${t.variant}`;
    curve(t);
    dirty = true;
    send();
  }
  if (running) setTimeout(poll, 1000);
}

function curve(t) {
  const svg = $("#curve"), x = (s) => 30 + 280 * s / t.seconds, y = (m) => 145 - 135 * m;
  const grid = [0, 0.5, 0.9, 1].map((m) =>
    `<line x1="30" x2="310" y1="${y(m)}" y2="${y(m)}"/><text x="2" y="${y(m) + 3}">${m}</text>`);
  const points = t.curve.map((p) => `${x(p.seconds)},${y(p.mean_iou)}`).join(" ");
  svg.innerHTML = `${grid.join("")}<text x="250" y="158">seconds</text>` +
    `<text x="34" y="20">mIoU</text><polyline points="${points}"/>`;
}

function tool(button) {
  erasing = button === "#eraser";
  $("#pen").classList.toggle("on", !erasing);
  $("#eraser").classList.toggle("on", erasing);
}

function at(e) {
  const r = draw.getBoundingClientRect();
  return [(e.clientX - r.left) * W / r.width, (e.clientY - r.top) * H / r.height];
}

async function start() {
  info = await api("/api/info");
  info.rgb = info.colours.map((c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)).concat(255));
  for (const [c, name] of info.classes.entries()) {   // styled here: the page allows no inline style
    const item = $("#legend").appendChild(document.createElement("li"));
    item.appendChild(document.createElement("span")).style.background = info.colours[c];
    item.append(name);
  }
  $("#heat-class").innerHTML = info.classes.map((name, c) => `<option value="${c}">${name}</option>`).join("");
  $("#train-variant").innerHTML = info.trainable.map((v) => `<option>${v}</option>`).join("");
  $("#train-variant").value = "fcn1s";
  draw.addEventListener("pointerdown", (e) => {
    draw.setPointerCapture(e.pointerId);
    stroke = { erase: erasing, points: [at(e)] };
    strokes.push(stroke);
    changed();
  });
  draw.addEventListener("pointermove", (e) => {
    if (!stroke) return;
    for (const p of e.getCoalescedEvents ? e.getCoalescedEvents() : [e]) stroke.points.push(at(p));
    changed();
  });
  for (const end of ["pointerup", "pointercancel"]) draw.addEventListener(end, () => { stroke = null; });
  $("#pen").onclick = () => tool("#pen");
  $("#eraser").onclick = () => tool("#eraser");
  $("#undo").onclick = () => { strokes.pop(); changed(); };
  $("#clear").onclick = () => { strokes = []; hasBase = false; changed(); };
  $("#sample").onclick = sample;
  $("#heat-class").onchange = () => { heatPicked = true; heat(); };
  $("#train-start").onclick = async () => {
    try {
      await api("/api/train", { variant: $("#train-variant").value, seconds: +$("#train-seconds").value });
      shownPoints = 0;
    } catch (e) {
      $("#train-status").textContent = `not started: ${e.message}`;
    }
    poll();
  };
  $("#train-stop").onclick = () => api("/api/train/stop", {});
  changed();
  poll();
}

start();
