// draw.js: the program of the drawing page. `make draw` (docs/draw.cpp) pastes
// it into docs/draw.html right after `MODELS`, the trained weights, so the page
// needs nothing else: no framework, no file, no network.
//
// In reading order, as in the C++ chapters: the weights; the three forward
// passes, input to probabilities, each keeping what the page shows of its
// inside; the pre-processing that turns a drawing into an MNIST image; the
// drawing pad (mouse, touch, pen); the bars and the pictures of the insides;
// and a hook for the tests (tests/test_draw.cpp). Every number is a
// JavaScript Number, a float64; the C++ programs compute in float32 (about
// seven significant digits), so the probabilities differ by rounding-sized
// amounts and, on the 10 000 MNIST test digits, not a single answer differs
// (the test checks every one, for all three networks).
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

// The attention model of chapter 4, as attention.cpp stores it (row-major,
// the chapter's names): w_patch (16, D), b_patch (D), pos (49, D), w_qkv
// (D, 3D) = [Wq | Wk | Wv], b_qkv (3D), w_ff1 (D, F), b_ff1 (F), w_ff2 (F, D),
// b_ff2 (D), w_cls (D, 10), b_cls (10). Absent when the page was built
// without docs/data/attention/attention.model.
const PATCH = 4, GRID = 7, N = GRID * GRID, P = PATCH * PATCH;  // 49 tokens of 16 pixels
const att = MODELS.attention && (() => {
  const m = { D: MODELS.attention.D, F: MODELS.attention.F };
  for (const k of ["w_patch", "b_patch", "pos", "w_qkv", "b_qkv", "w_ff1", "b_ff1", "w_ff2", "b_ff2", "w_cls", "b_cls"])
    m[k] = floats(MODELS.attention[k]);
  return m;
})();

// ---- The forward passes ---------------------------------------------------
//
// Each takes x, the image as 784 numbers in [0, 1] (pixel byte / 255, rounded
// to float32 as the programs' nn::pixel does: x is a Float32Array), row by
// row, and returns the ten class probabilities `p` and what the page draws
// of its inside.

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
  return { p: softmax(z), h };
}

// CNN: convolution 3x3 with 8 filters and zero padding 1, ReLU, max-pool 2x2,
// linear 1568 -> 10, softmax. The C++ fuses the first three into one pass
// (conv_relu_pool) and never keeps the 28 x 28 maps; here they are the plain
// loops of its formulas, and the maps are kept, to be drawn:
//   relu[c][y][x] = max(0, b_c + sum_{u,v} w[c][u][v] * pixel(y+u-1, x+v-1))   (0 outside)
//   pooled[c][i][j] = max over the 2x2 block of relu
function cnnForward(x) {
  const relu = new Float64Array(C * 784);          // (C, 28, 28)
  for (let c = 0; c < C; ++c)
    for (let y = 0; y < 28; ++y)
      for (let xx = 0; xx < 28; ++xx) {
        let z = cnn.conv_b[c];
        for (let u = 0; u < K; ++u)
          for (let v = 0; v < K; ++v) {
            const py = y + u - 1, px = xx + v - 1;
            if (py >= 0 && py < 28 && px >= 0 && px < 28) z += cnn.conv_w[(c * K + u) * K + v] * x[py * 28 + px];
          }
        relu[c * 784 + y * 28 + xx] = z > 0 ? z : 0;
      }
  const pooled = new Float64Array(FC_IN);          // (C, 14, 14), feature c*196 + i*14 + j
  for (let c = 0; c < C; ++c)
    for (let i = 0; i < PH; ++i)
      for (let j = 0; j < PW; ++j) {
        const r = c * 784 + 2 * i * 28 + 2 * j;
        pooled[c * PH * PW + i * PW + j] = Math.max(relu[r], relu[r + 1], relu[r + 28], relu[r + 29]);
      }
  const z = Float64Array.from(cnn.fc_b);          // s_j = b_j + sum_i pooled_i W_ji
  for (let k = 0; k < OUT; ++k)
    for (let i = 0; i < FC_IN; ++i) z[k] += pooled[i] * cnn.fc_w[k * FC_IN + i];
  return { p: softmax(z), relu, pooled };
}

// Attention (chapter 4), for one image; t is a token (patch), rows of every
// matrix are tokens:
//   E = relu(X We + be + pos)           (49, D)  X: each patch's 16 pixels, in reading order
//   [Q | K | V] = E Wqkv + bqkv         (49, 3D)
//   A = softmax_rows(Q K^T / sqrt(D))   (49, 49) row i: how much patch i reads each patch j
//   O = A V                             (49, D)
//   H = relu(O W1 + b1)                 (49, F)
//   m = mean_t(H) W2 + b2               (D)      the chapter's exact shortcut: mean first
//   p = softmax(m Wc + bc)              (10)
// Two savings, exact in real arithmetic (only float64 rounding differs):
// O W1 = (A V) W1 = A (V W1), so each token's V row is multiplied by W1 once
// (`vw`, 49 x F) and H is A times that, which skips O; and a blank patch (all
// 16 pixels 0) has the same E row, so the same Q, K, V and V W1 rows, in every
// image: those are computed once, on first use (`blankRows`), which saves
// most of the work on MNIST's black borders.
const blankRows = [];
function attentionForward(x) {
  const { D, F } = att, D3 = 3 * D;
  const We = att.w_patch, be = att.b_patch, pos = att.pos, Wqkv = att.w_qkv, bqkv = att.b_qkv, W1 = att.w_ff1;
  const qkv = new Float64Array(N * D3), vw = new Float64Array(N * F);
  const e = new Float64Array(D), patch = new Float64Array(P);
  for (let t = 0; t < N; ++t) {
    const py = Math.floor(t / GRID), px = t % GRID;
    let blank = true;
    for (let j = 0; j < P; ++j) {
      patch[j] = x[(py * PATCH + (j >> 2)) * 28 + px * PATCH + (j & 3)];
      if (patch[j] !== 0) blank = false;
    }
    if (blank && blankRows[t]) {
      qkv.set(blankRows[t].qkv, t * D3);
      vw.set(blankRows[t].vw, t * F);
      continue;
    }
    for (let d = 0; d < D; ++d) e[d] = be[d] + pos[t * D + d];
    for (let j = 0; j < P; ++j) {
      const xj = patch[j];
      if (xj === 0) continue;
      for (let d = 0; d < D; ++d) e[d] += xj * We[j * D + d];
    }
    const row = qkv.subarray(t * D3, (t + 1) * D3);
    row.set(bqkv);
    for (let d = 0; d < D; ++d) {
      const ed = e[d];
      if (!(ed > 0)) continue;                     // relu: 0 adds nothing
      const w = d * D3;
      for (let c = 0; c < D3; ++c) row[c] += ed * Wqkv[w + c];
    }
    const vwt = vw.subarray(t * F, (t + 1) * F);   // V_t W1
    for (let d = 0; d < D; ++d) {
      const v = row[2 * D + d], w = d * F;
      for (let f = 0; f < F; ++f) vwt[f] += v * W1[w + f];
    }
    if (blank) blankRows[t] = { qkv: Float64Array.from(row), vw: Float64Array.from(vwt) };
  }
  const A = new Float64Array(N * N), scale = 1 / Math.sqrt(D), s = new Float64Array(N);
  for (let i = 0; i < N; ++i) {                    // scores, then the row's softmax
    const qi = i * D3;
    let top = -Infinity;
    for (let j = 0; j < N; ++j) {
      const kj = j * D3 + D;
      let dot = 0;
      for (let d = 0; d < D; ++d) dot += qkv[qi + d] * qkv[kj + d];
      s[j] = dot * scale;
      if (s[j] > top) top = s[j];
    }
    let sum = 0;
    for (let j = 0; j < N; ++j) sum += (s[j] = Math.exp(s[j] - top));
    for (let j = 0; j < N; ++j) A[i * N + j] = s[j] / sum;
  }
  const hbar = new Float64Array(F), h = new Float64Array(F);
  for (let i = 0; i < N; ++i) {                    // H_i = relu(b1 + sum_j A_ij (V W1)_j), summed into hbar
    h.set(att.b_ff1);
    for (let j = 0; j < N; ++j) {
      const a = A[i * N + j], w = j * F;
      for (let f = 0; f < F; ++f) h[f] += a * vw[w + f];
    }
    for (let f = 0; f < F; ++f) if (h[f] > 0) hbar[f] += h[f] / N;
  }
  const m = Float64Array.from(att.b_ff2);
  for (let f = 0; f < F; ++f)
    for (let d = 0; d < D; ++d) m[d] += hbar[f] * att.w_ff2[f * D + d];
  const z = Float64Array.from(att.b_cls);
  for (let d = 0; d < D; ++d)
    for (let k = 0; k < OUT; ++k) z[k] += m[d] * att.w_cls[d * OUT + k];
  return { p: softmax(z), A };
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

// ---- Colours ------------------------------------------------------------------
//
// The page has a light and a dark look (CSS, prefers-color-scheme); the
// pictures below are drawn in pixels, so they read the current colours from
// the style sheet's variables: paper, ink, and the heat colours.
function colour(name) {
  const hex = getComputedStyle(document.documentElement).getPropertyValue(name).trim();  // "#rrggbb"
  return [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
}
function mix(a, b, t) {   // the colour t of the way from a to b, t in [0, 1]
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}
let C_PAPER, C_INK, C_HOT, C_POS, C_NEG;
function readColours() {
  [C_PAPER, C_INK, C_HOT, C_POS, C_NEG] = ["--paper", "--ink", "--hot", "--pos", "--neg"].map(colour);
}
readColours();

// An image of w x h cells on a canvas, cell i coloured rgb(i); the canvas's
// CSS size does the magnification (pixelated).
function paintCells(canvas, w, h, rgb) {
  const ctx = canvas.getContext("2d");
  const im = ctx.createImageData(w, h), px = im.data;  // a Uint8ClampedArray: it rounds
  for (let i = 0; i < w * h; ++i) {
    const c = rgb(i);
    px[4 * i] = c[0], px[4 * i + 1] = c[1], px[4 * i + 2] = c[2], px[4 * i + 3] = 255;
  }
  ctx.putImageData(im, 0, 0);
}
// Diverging: v in [-1, 1], negative blue, 0 paper, positive red.
function diverging(v) { return v >= 0 ? mix(C_PAPER, C_POS, v) : mix(C_PAPER, C_NEG, -v); }

// ---- The pad ------------------------------------------------------------------
//
// A 280 x 280 canvas, transparent over the page's paper, strokes in the ink
// colour; the canvas's alpha channel is exactly the ink's coverage,
// anti-aliased by the browser, whatever the colours. Pointer events cover the
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
  padCtx.strokeStyle = `rgb(${C_INK})`;
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

// When the reader's system switches between light and dark, the ink on the
// pad takes the new colour (its alpha, the drawing, is kept) and every
// picture is drawn again.
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  readColours();
  padCtx.globalCompositeOperation = "source-in";
  padCtx.fillStyle = `rgb(${C_INK})`;
  padCtx.fillRect(0, 0, SIZE, SIZE);
  padCtx.globalCompositeOperation = "source-over";
  drawFilters();
  update();
});

// ---- Reading the pad, showing the answers and the insides ---------------------
//
// The pad's alpha channel -> toMnist -> the small view and the three
// networks. The small view shows the 28 x 28 input as the tutorial draws
// MNIST digits, ink on paper, each pixel a square.
function update() {
  const rgba = padCtx.getImageData(0, 0, SIZE, SIZE).data;
  const ink = new Uint8Array(SIZE * SIZE);
  for (let i = 0; i < ink.length; ++i) ink[i] = rgba[4 * i + 3];
  const img = toMnist(ink, SIZE);
  paintCells(document.getElementById("seen"), 28, 28, i => mix(C_PAPER, C_INK, img ? img[i] / 255 : 0));
  const x = img && input(img);
  const m = x && mlpForward(x);
  show("mlp", m && m.p);
  showUnits(x, m);
  if (cnn) {
    const c = x && cnnForward(x);
    show("cnn", c && c.p);
    showMaps(c);
  }
  if (att) {
    const a = x && attentionForward(x);
    show("att", a && a.p);
    showAttention(x, a);
  }
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

// A row of small labelled canvases, made once: `count` of w x h cells.
function makeRow(id, count, w, h, label) {
  const box = document.getElementById(id);
  for (let k = 0; k < count; ++k)
    box.insertAdjacentHTML("beforeend",
      `<figure><canvas width="${w}" height="${h}"></canvas><figcaption>${label(k)}</figcaption></figure>`);
  return [...box.querySelectorAll("canvas")];
}

// The attention map over the input: each of the 49 patches tinted by the
// attention it receives, averaged over the 49 queries (the column means of
// A), relative to the most-read patch; the drawing shows through as ink. And
// each patch's own row of A, a 7 x 7 map drawn small at the patch's place.
// Both canvases have 9 pixels per MNIST pixel: 252 x 252, a patch 36 x 36.
const S = 9, PS = S * PATCH, SIDE = 28 * S;
function showAttention(x, a) {
  const recv = new Float64Array(N), rowMax = new Float64Array(N);
  if (a)
    for (let i = 0; i < N; ++i)
      for (let j = 0; j < N; ++j) {
        recv[j] += a.A[i * N + j] / N;
        rowMax[i] = Math.max(rowMax[i], a.A[i * N + j]);
      }
  const most = Math.max(...recv) || 1;
  paintCells(document.getElementById("att-received"), SIDE, SIDE, i => {
    const X = i % SIDE, Y = Math.floor(i / SIDE), px = Math.floor(X / S), py = Math.floor(Y / S);
    const t = Math.floor(py / PATCH) * GRID + Math.floor(px / PATCH);
    if (X % PS === 0 || Y % PS === 0) return mix(C_PAPER, C_INK, 0.25);  // the patch grid
    const heat = mix(C_PAPER, C_HOT, recv[t] / most);
    return mix(heat, C_INK, x ? 0.85 * x[py * 28 + px] : 0);
  });
  paintCells(document.getElementById("att-rows"), SIDE, SIDE, i => {
    const X = i % SIDE, Y = Math.floor(i / SIDE);
    const q = Math.floor(Y / PS) * GRID + Math.floor(X / PS);   // the query patch of this cell
    const u = X % PS - 4, v = Y % PS - 4;                      // its 7 x 7 map: 4 pixels a key, inset 4
    if (u < 0 || v < 0 || u >= 28 || v >= 28) return C_PAPER;
    const k = Math.floor(v / 4) * GRID + Math.floor(u / 4);
    if (k === q && (u % 4 === 0 || u % 4 === 3 || v % 4 === 0 || v % 4 === 3)) return C_NEG;  // its own cell, outlined
    if (!a) return mix(C_PAPER, C_INK, 0.08);
    return mix(C_PAPER, C_HOT, a.A[q * N + k] / rowMax[q]);
  });
}

// The CNN: its 8 filters (once: they do not depend on the drawing), then for
// the current drawing the 8 maps after ReLU (28 x 28) and after max-pooling
// (14 x 14), all on one scale, the largest activation of the 16 maps, so that
// the filters can be compared: a filter that finds nothing stays blank.
let filterCanvases, reluCanvases, pooledCanvases;
function drawFilters() {
  if (!cnn) return;
  const most = Math.max(...cnn.conv_w.map(Math.abs));
  filterCanvases.forEach((cv, c) => paintCells(cv, K, K, i => diverging(cnn.conv_w[c * K * K + i] / most)));
}
function showMaps(c) {
  let most = 0;
  if (c) for (const v of c.relu) most = Math.max(most, v);
  const scale = most > 0 ? 1 / most : 0;
  reluCanvases.forEach((cv, k) => paintCells(cv, 28, 28, i => mix(C_PAPER, C_HOT, c ? c.relu[k * 784 + i] * scale : 0)));
  pooledCanvases.forEach((cv, k) =>
    paintCells(cv, PW, PH, i => mix(C_PAPER, C_HOT, c ? c.pooled[k * PH * PW + i] * scale : 0)));
}

// The MLP: the 8 hidden neurons with the largest activation h_j for the
// current drawing, brightest first. Each is drawn twice: its 784 input
// weights, column j of W1, laid out as the image (red: ink there raises h_j,
// blue: lowers it; each neuron on its own scale); and below, those weights
// times the drawing, x_i W1[i][j], the terms whose sum (plus the bias) is
// h_j: where the drawing actually pushed it up or down. The caption gives h_j
// and the digit its outgoing weights favour most, the largest W2[j][k].
const UNITS = 8;
let unitCanvases, termCanvases;
function showUnits(x, m) {
  const H = mlp.H, order = [];
  if (m) {
    for (let j = 0; j < H; ++j) if (m.h[j] > 0) order.push(j);
    order.sort((a, b) => m.h[b] - m.h[a]);
  }
  unitCanvases.forEach((cv, n) => {
    const j = order[n], caption = cv.nextElementSibling, terms = termCanvases[n];
    if (j === undefined) {
      paintCells(cv, 28, 28, () => C_PAPER);
      paintCells(terms, 28, 28, () => C_PAPER);
      caption.textContent = "–";
      return;
    }
    let most = 0, mostTerm = 0;
    for (let i = 0; i < IN; ++i) {
      most = Math.max(most, Math.abs(mlp.W1[i * H + j]));
      mostTerm = Math.max(mostTerm, Math.abs(x[i] * mlp.W1[i * H + j]));
    }
    paintCells(cv, 28, 28, i => diverging(mlp.W1[i * H + j] / most));
    paintCells(terms, 28, 28, i => diverging(mostTerm > 0 ? x[i] * mlp.W1[i * H + j] / mostTerm : 0));
    let vote = 0;
    for (let k = 1; k < OUT; ++k) if (mlp.W2[j * OUT + k] > mlp.W2[j * OUT + vote]) vote = k;
    caption.textContent = `h ${m.h[j].toFixed(2)} → ${vote}`;
    caption.title = `hidden neuron ${j}: activation ${m.h[j].toFixed(3)}; its largest weight to the output is to ${vote}`;
  });
}

makeBars("mlp");
unitCanvases = makeRow("units", UNITS, 28, 28, () => "");
termCanvases = makeRow("terms", UNITS, 28, 28, () => "x × w");
if (cnn) {
  makeBars("cnn");
  filterCanvases = makeRow("filters", C, K, K, c => `filter ${c}`);
  reluCanvases = makeRow("relu", C, 28, 28, c => `ReLU ${c}`);
  pooledCanvases = makeRow("pooled", C, PW, PH, c => `pooled ${c}`);
  drawFilters();
} else {
  for (const id of ["net-cnn", "inside-cnn"]) document.getElementById(id).hidden = true;
}
if (att) makeBars("att");
else for (const id of ["net-att", "inside-att"]) document.getElementById(id).hidden = true;
update();

// ---- Test hook ------------------------------------------------------------------
//
// Not for readers: tests/test_draw.cpp drives the page from headless Chromium
// through the address's fragment; a plain visit does nothing here.
//   #draw=BASE64  (784 bytes, an MNIST test digit) paints the digit onto the
//                 pad as if drawn, magnified 8 times and off centre, then
//                 reads the pad as a drawing is read (for a screenshot).
//   #test=NAME.js loads NAME.js from this page's folder; it calls
//                 drawTest(BASE64, redraw, probe) with N MNIST digits of 784 bytes.
// drawTest classifies each digit as it is (MNIST digits are pre-processed
// already) with each network, and paints the first `redraw` of them as #draw
// does and reads them back. It writes one answer digit per image into
// <pre id="test-mlp">, "test-cnn", "test-att", "redraw-mlp", "redraw-cnn"
// and "redraw-att", which the test reads with `chromium --dump-dom`; and for
// each digit index in `probe`, the networks' insides in <pre id="probe">,
// one line per digit and quantity, "digit name v0 v1 ...": the three
// probability vectors (mlp, cnn, att), the CNN's maps (relu, pooled) and the
// attention matrix (A), each row by row. #draw also writes <pre id="layout">,
// each canvas's id and place on the page (x y width height), so that the test
// can find them in a screenshot.
function paint(digit) {   // 784 bytes -> the pad, smoothly magnified 8 times at (36, 12)
  const small = document.createElement("canvas");
  small.width = small.height = 28;
  const sctx = small.getContext("2d");
  const im = sctx.createImageData(28, 28);
  for (let i = 0; i < IN; ++i) im.data.set([...C_INK, digit[i]], 4 * i);  // ink, coverage = the pixel
  sctx.putImageData(im, 0, 0);
  padCtx.clearRect(0, 0, SIZE, SIZE);
  padCtx.imageSmoothingEnabled = true;
  padCtx.drawImage(small, 36, 12, 8 * 28, 8 * 28);
}

function drawTest(base64, redraw, probe = []) {
  const digits = bytes(base64), n = digits.length / IN, nets = { mlp: mlpForward, cnn: cnnForward, att: attentionForward };
  const out = {}, inside = [];
  for (const net in nets) out["test-" + net] = out["redraw-" + net] = "";
  const live = Object.keys(nets).filter(net => net === "mlp" || (net === "cnn" ? cnn : att));
  for (let d = 0; d < n; ++d) {
    const x = input(digits.subarray(d * IN, (d + 1) * IN));
    for (const net of live) out["test-" + net] += argmax(nets[net](x).p);
  }
  for (const d of probe) {    // one line per digit and quantity: "digit name v0 v1 ..."
    const x = input(digits.subarray(d * IN, (d + 1) * IN)), r = { mlp: mlpForward(x).p };
    if (cnn) { const c = cnnForward(x); Object.assign(r, { cnn: c.p, relu: c.relu, pooled: c.pooled }); }
    if (att) { const a = attentionForward(x); Object.assign(r, { att: a.p, A: a.A }); }
    for (const name in r) inside.push(`${d} ${name} ${Array.from(r[name]).join(" ")}`);
  }
  for (let d = 0; d < Math.min(n, redraw); ++d) {
    paint(digits.subarray(d * IN, (d + 1) * IN));
    update();
    for (const net of live) out["redraw-" + net] += document.getElementById("answer-" + net).dataset.digit;
  }
  for (const id in out) document.body.insertAdjacentHTML("beforeend", `<pre id="${id}" hidden>${out[id]}</pre>`);
  document.body.insertAdjacentHTML("beforeend", `<pre id="probe" hidden>${inside.join("\n")}</pre>`);
}

const drawHook = /^#draw=([A-Za-z0-9+/]+=*)$/.exec(location.hash);
const testHook = /^#test=([\w-]+\.js)$/.exec(location.hash);  // a file name, nothing else
if (drawHook) {
  paint(bytes(drawHook[1]));
  update();
  const places = [...document.querySelectorAll("canvas")].map(cv => {
    const row = cv.closest(".maps"), r = cv.getBoundingClientRect();  // a row's canvases are ROW-0, ROW-1, ...
    const name = cv.id || `${row.id}-${[...row.querySelectorAll("canvas")].indexOf(cv)}`;
    return [name, ...[r.x, r.y, r.width, r.height].map(Math.round)].join(" ");
  });
  document.body.insertAdjacentHTML("beforeend", `<pre id="layout" hidden>${places.join("\n")}</pre>`);
} else if (testHook) {
  const script = document.createElement("script");
  script.src = testHook[1];
  document.head.append(script);
}
