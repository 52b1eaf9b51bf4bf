// chainrule playground: what every page draws with (one run, race, surface): the colours, the
// way a number is written, and the decoding of the frames' byte pictures. Loaded after
// transport.js and before each page's own script.
"use strict";

const NEG = [33, 102, 172], POS = [178, 24, 43], WHITE = [255, 255, 255];
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"];

function formatNumber(x, text) {
  if (x === null || x === undefined) return text || "–";
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 1e4 || a < 1e-3 ? x.toExponential(2) : String(Number(x.toPrecision(4)));
}

function bytesOf(b64) {
  const raw = atob(b64);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

const mix = (a, b, t) => a.map((v, i) => Math.round(v + (b[i] - v) * t));
const hex = (c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));

// A score's tanh as a frame's byte (127.5 = 0) on the boundary's continuous ramp: blue through a
// muted middle to red, with no white band (an upscaled raster drew that as a beaded line).
function scoreColour(byte) {
  const t = (byte - 127.5) / 127.5;
  return mix(mix(NEG, POS, 0.5 + 0.5 * t), WHITE, 0.45 - 0.25 * Math.abs(t));
}

function classColour(c, classes) {
  if (classes === 2) return c === 0 ? NEG : POS;
  return hex(PALETTE[c % PALETTE.length]);
}
