// draw.js: the program of the drawing page. `make draw` (docs/draw.cpp) pastes
// it into docs/draw.html right after `MODELS`, the trained weights, so the page
// needs nothing else: no framework, no file, no network.
//
// In reading order, as in the C++ chapters: the weights; the two forward
// passes, input to probabilities; the pre-processing that turns a drawing
// into an MNIST image; the drawing pad (mouse, touch, pen); the bars; and a
// hook for the tests (tests/test_draw.cpp). Every number is a JavaScript
// Number, a float64; the C++ programs compute in float32 (about seven
// significant digits), so the probabilities differ by rounding-sized amounts
// and, on the 10 000 MNIST test digits, not a single answer differs (the test
// checks every one).
"use strict";

// ---- The weights ----------------------------------------------------------
//
// MODELS holds each tensor as base64 text of its float32 values, 4 bytes
// each, little-endian (the byte order of every machine a browser runs on),
// in the C++ program's own layout. These are the programs' weights exactly:
// they train in float32, and mnist_model.bin's float64s are float32s widened.
function bytes(base64) { return Uint8Array.from(atob(base64), ch => ch.charCodeAt(0)); }
function floats(base64) { return new Float32Array(bytes(base64).buffer); }

const IN = 784, OUT = 10;  // 28 x 28 pixels in, digits 0..9 out

// The MLP of chapter 2, as mnist_model.bin stores it: W1 (784, H) row-major,
// so W1[i*H + j] joins pixel i to hidden neuron j; b1 (H); W2 (H, 10); b2 (10).
const mlp = {
  H: MODELS.mlp.H,
  W1: floats(MODELS.mlp.W1), b1: floats(MODELS.mlp.b1),
  W2: floats(MODELS.mlp.W2), b2: floats(MODELS.mlp.b2),
};

// The CNN of chapter 3, as cnn.cpp stores it: conv_w (8, 3, 3), conv_b (8),
// fc_w (10, 1568) with class j's weights in row j, fc_b (10). Absent when the
// page was built without docs/data/cnn.model.
const C = 8, K = 3, PH = 14, PW = 14, FC_IN = C * PH * PW;  // 1568 features
const cnn = MODELS.cnn && {
  conv_w: floats(MODELS.cnn.conv_w), conv_b: floats(MODELS.cnn.conv_b),
  fc_w: floats(MODELS.cnn.fc_w), fc_b: floats(MODELS.cnn.fc_b),
};

// ---- The forward passes ---------------------------------------------------
//
// Both take x, the image as 784 numbers in [0, 1] (pixel byte / 255, rounded
// to float32 as the programs' nn::pixel does: x is a Float32Array), row by
// row, and return the ten class probabilities.

// p = softmax(z): p_k = e^(z_k - m) / sum_j e^(z_j - m), with m the largest
// logit, so that no exponential overflows (chapter 2, "Softmax").
function softmax(z) {
  const m = Math.max(...z);
  const p = z.map(v => Math.exp(v - m));
  const sum = p.reduce((a, b) => a + b, 0);
  return p.map(v => v / sum);
}

// MLP: z1 = x W1 + b1, h = relu(z1), z2 = h W2 + b2, p = softmax(z2).
function mlpForward(x) {
  const H = mlp.H;
  const h = Float64Array.from(mlp.b1);            // (H) z1 starts as b1 ...
  for (let i = 0; i < IN; ++i) {                   // ... and gains x_i times row i of W1
    if (x[i] === 0) continue;                      // most pixels are blank: skip them, as chapter 2 does
    const xi = x[i], row = i * H;
    for (let j = 0; j < H; ++j) h[j] += xi * mlp.W1[row + j];  // stride 1 through W1
  }
  const z = Float64Array.from(mlp.b2);            // (10) z2 starts as b2 ...
  for (let j = 0; j < H; ++j) {
    if (!(h[j] > 0)) continue;                     // relu: a neuron at or below 0 adds nothing
    for (let k = 0; k < OUT; ++k) z[k] += h[j] * mlp.W2[j * OUT + k];  // ... and gains h_j times row j
  }
  return softmax(z);
}

// CNN: convolution 3x3 with 8 filters and zero padding 1, ReLU, max-pool 2x2,
// linear 1568 -> 10, softmax. The C++ fuses the first three into one pass
// (conv_relu_pool); here they are the plain loops of its formulas:
//   z[c][y][x] = b_c + sum_{u,v} w[c][u][v] * pixel(y+u-1, x+v-1)   (0 outside)
//   pooled[c][i][j] = max over the 2x2 block of relu(z) = max(0, z of the 4)
function cnnForward(x) {
  const pooled = new Float64Array(FC_IN);          // (C, 14, 14), feature c*196 + i*14 + j
  for (let c = 0; c < C; ++c)
    for (let i = 0; i < PH; ++i)
      for (let j = 0; j < PW; ++j) {
        let best = 0;                              // relu: the max starts at 0
        for (let y = 2 * i; y < 2 * i + 2; ++y)
          for (let xx = 2 * j; xx < 2 * j + 2; ++xx) {
            let z = cnn.conv_b[c];
            for (let u = 0; u < K; ++u)
              for (let v = 0; v < K; ++v) {
                const py = y + u - 1, px = xx + v - 1;
                if (py >= 0 && py < 28 && px >= 0 && px < 28) z += cnn.conv_w[(c * K + u) * K + v] * x[py * 28 + px];
              }
            if (z > best) best = z;
          }
        pooled[c * PH * PW + i * PW + j] = best;
      }
  const z = Float64Array.from(cnn.fc_b);          // s_j = b_j + sum_i pooled_i W_ji
  for (let k = 0; k < OUT; ++k)
    for (let i = 0; i < FC_IN; ++i) z[k] += pooled[i] * cnn.fc_w[k * FC_IN + i];
  return softmax(z);
}

// The answer: the most probable class, the first one on a tie (as the programs).
function argmax(p) {
  let best = 0;
  for (let k = 1; k < p.length; ++k) if (p[k] > p[best]) best = k;
  return best;
}

// An MNIST image of 784 bytes as the networks' input.
function input(bytes) { return Float32Array.from(bytes, b => b / 255); }

// ---- From a drawing to an MNIST image ---------------------------------------
//
// The page's text explains why. `ink` is the pad's coverage, size x size
// bytes (0 blank, 255 fully inked); the result is 784 bytes laid out as MNIST
// was: the drawing scaled so that its longer side is 20 pixels (aspect kept),
// area-averaged (grey edges), and moved so that its centre of mass sits at
// the centre of the 28 x 28 field. Null when nothing is drawn.
function toMnist(ink, size) {
  // The bounding box of the ink and its centre of mass; pixel (x, y) is the
  // square [x, x+1) x [y, y+1), its centre (x + 0.5, y + 0.5).
  let x0 = size, x1 = -1, y0 = size, y1 = -1, mass = 0, mx = 0, my = 0;
  for (let y = 0; y < size; ++y)
    for (let x = 0; x < size; ++x) {
      const v = ink[y * size + x];
      if (v === 0) continue;
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      mass += v; mx += v * (x + 0.5); my += v * (y + 0.5);
    }
  if (mass === 0) return null;
  const s = 20 / Math.max(x1 - x0 + 1, y1 - y0 + 1);  // pad pixels -> MNIST pixels
  const cx = mx / mass, cy = my / mass;
  // Pad pixel (x, y) lands on the square [a, a+s) x [b, b+s) of the 28 x 28
  // field, a = (x - cx) s + 14, b = (y - cy) s + 14, so that the centre of
  // mass lands on (14, 14). It gives each MNIST pixel its ink times the area
  // they share (ox * oy): each MNIST pixel gets the average ink over the
  // piece of the drawing it covers. That is the anti-aliasing: a pixel that
  // a stroke half covers comes out half grey. Ink beyond the field is lost.
  const out = new Float64Array(IN);
  for (let y = y0; y <= y1; ++y) {
    const b = (y - cy) * s + 14;
    for (let x = x0; x <= x1; ++x) {
      const v = ink[y * size + x];
      if (v === 0) continue;
      const a = (x - cx) * s + 14;
      for (let r = Math.max(0, Math.floor(b)); r < Math.min(28, Math.ceil(b + s)); ++r) {
        const oy = Math.min(b + s, r + 1) - Math.max(b, r);
        for (let c = Math.max(0, Math.floor(a)); c < Math.min(28, Math.ceil(a + s)); ++c) {
          const ox = Math.min(a + s, c + 1) - Math.max(a, c);
          out[r * 28 + c] += v * ox * oy;
        }
      }
    }
  }
  return Uint8Array.from(out, v => Math.min(255, Math.round(v)));  // bytes, as MNIST stores them
}

// ---- The pad ------------------------------------------------------------------
//
// A 280 x 280 canvas, transparent; the page behind it is white, so black
// strokes look like ink on paper, and the canvas's alpha channel is exactly
// the ink's coverage, anti-aliased by the browser. Pointer events cover the
// mouse, touch and pens alike. Each stroke segment asks for an update, run
// once the browser has handled the events waiting (a timeout of 0): a burst
// of segments costs one update, and the bars follow the pen.
const pad = document.getElementById("pad");
const padCtx = pad.getContext("2d", { willReadFrequently: true });
const SIZE = pad.width;   // 280: ten pad pixels per MNIST pixel
const BRUSH = 24;         // a stroke of a digit drawn 200 pixels tall becomes about 2.4 MNIST pixels wide, as in MNIST

let last = null;          // the pen's previous position while it is down
function at(e) {          // the event's position in canvas pixels, whatever size CSS gives the canvas
  const r = pad.getBoundingClientRect();
  return { x: (e.clientX - r.left) * SIZE / r.width, y: (e.clientY - r.top) * SIZE / r.height };
}
function stroke(p, q) {
  padCtx.lineCap = padCtx.lineJoin = "round";
  padCtx.lineWidth = BRUSH;
  padCtx.strokeStyle = "#000";
  padCtx.beginPath();
  padCtx.moveTo(p.x, p.y);
  padCtx.lineTo(q.x, q.y);
  padCtx.stroke();
  schedule();
}
pad.addEventListener("pointerdown", e => {
  pad.setPointerCapture(e.pointerId);
  last = at(e);
  stroke(last, last);     // a click is a dot
});
pad.addEventListener("pointermove", e => {
  if (!last) return;
  const p = at(e);
  stroke(last, p);
  last = p;
});
for (const end of ["pointerup", "pointercancel"]) pad.addEventListener(end, () => { last = null; });
document.getElementById("clear").addEventListener("click", () => {
  padCtx.clearRect(0, 0, SIZE, SIZE);
  update();
});

let pending = false;
function schedule() {
  if (!pending) { pending = true; setTimeout(() => { pending = false; update(); }, 0); }
}

// ---- Reading the pad, showing the answers ---------------------------------------
//
// The pad's alpha channel -> toMnist -> the small view and both networks.
// The small view shows the 28 x 28 input as the tutorial draws MNIST digits,
// dark on white, each pixel a square.
const seen = document.getElementById("seen").getContext("2d");
function update() {
  const rgba = padCtx.getImageData(0, 0, SIZE, SIZE).data;
  const ink = new Uint8Array(SIZE * SIZE);
  for (let i = 0; i < ink.length; ++i) ink[i] = rgba[4 * i + 3];
  const img = toMnist(ink, SIZE);
  const view = seen.createImageData(28, 28);
  for (let i = 0; i < IN; ++i) {
    const g = 255 - (img ? img[i] : 0);
    view.data.set([g, g, g, 255], 4 * i);
  }
  seen.putImageData(view, 0, 0);
  show("mlp", img && mlpForward(input(img)));
  if (cnn) show("cnn", img && cnnForward(input(img)));
  return img;
}

// One row per digit: its bar and its probability; the answer's bar is green.
function makeBars(name) {
  const box = document.getElementById("bars-" + name);
  for (let k = 0; k < OUT; ++k)
    box.insertAdjacentHTML("beforeend",
      `<div class="row"><span>${k}</span><div class="bar"><div></div></div><span class="pct"></span></div>`);
}
function show(name, p) {
  const rows = document.querySelectorAll(`#bars-${name} .row`);
  const best = p ? argmax(p) : -1;
  rows.forEach((row, k) => {
    const fill = row.querySelector(".bar div");
    fill.style.width = p ? (100 * p[k]).toFixed(1) + "%" : "0";
    fill.classList.toggle("best", k === best);
    row.querySelector(".pct").textContent = p ? (100 * p[k]).toFixed(1) + "%" : "";
  });
  const answer = document.getElementById("answer-" + name);
  answer.dataset.digit = p ? best : "";
  answer.textContent = p ? `${best}` : "–";
}

makeBars("mlp");
if (cnn) makeBars("cnn");
else document.getElementById("net-cnn").hidden = true;
update();

// ---- Test hook ------------------------------------------------------------------
//
// Not for readers: tests/test_draw.cpp drives the page from headless Chromium
// through the address's fragment; a plain visit does nothing here.
//   #draw=BASE64  (784 bytes, an MNIST test digit) paints the digit onto the
//                 pad as if drawn, magnified 8 times and off centre, then
//                 reads the pad as a drawing is read (for a screenshot).
//   #test=NAME.js loads NAME.js from this page's folder; it calls
//                 drawTest(BASE64, redraw) with N MNIST digits of 784 bytes.
// drawTest classifies each digit as it is (MNIST digits are pre-processed
// already) with each network, and paints the first `redraw` of them as #draw
// does and reads them back. It writes one answer digit per image into
// <pre id="test-mlp">, "test-cnn", "redraw-mlp" and "redraw-cnn", which the
// test reads with `chromium --dump-dom`.
function paint(digit) {   // 784 bytes -> the pad, smoothly magnified 8 times at (36, 12)
  const small = document.createElement("canvas");
  small.width = small.height = 28;
  const sctx = small.getContext("2d");
  const im = sctx.createImageData(28, 28);
  for (let i = 0; i < IN; ++i) im.data[4 * i + 3] = digit[i];  // black ink, coverage = the pixel
  sctx.putImageData(im, 0, 0);
  padCtx.clearRect(0, 0, SIZE, SIZE);
  padCtx.imageSmoothingEnabled = true;
  padCtx.drawImage(small, 36, 12, 8 * 28, 8 * 28);
}

function drawTest(base64, redraw) {
  const digits = bytes(base64), n = digits.length / IN;
  const out = { "test-mlp": "", "test-cnn": "", "redraw-mlp": "", "redraw-cnn": "" };
  for (let d = 0; d < n; ++d) {
    const x = input(digits.subarray(d * IN, (d + 1) * IN));
    out["test-mlp"] += argmax(mlpForward(x));
    if (cnn) out["test-cnn"] += argmax(cnnForward(x));
  }
  for (let d = 0; d < Math.min(n, redraw); ++d) {
    paint(digits.subarray(d * IN, (d + 1) * IN));
    update();
    out["redraw-mlp"] += document.getElementById("answer-mlp").dataset.digit;
    if (cnn) out["redraw-cnn"] += document.getElementById("answer-cnn").dataset.digit;
  }
  for (const id in out) document.body.insertAdjacentHTML("beforeend", `<pre id="${id}" hidden>${out[id]}</pre>`);
}

const drawHook = /^#draw=([A-Za-z0-9+/]+=*)$/.exec(location.hash);
const testHook = /^#test=([\w-]+\.js)$/.exec(location.hash);  // a file name, nothing else
if (drawHook) {
  paint(bytes(drawHook[1]));
  update();
} else if (testHook) {
  const script = document.createElement("script");
  script.src = testHook[1];
  document.head.append(script);
}
