// chainrule playground views: what the race and the surface pages share (they draw; the
// server's Race and Surface decide every number). The one rule, as on the one-run page:
// requests go out one at a time (a queue), so frames arrive in order.
"use strict";

const Views = (() => {
  // One colour per run, kept everywhere (card, curve, boundary, path): by the run's id.
  const RUN_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
                       "#e377c2", "#17becf"];
  // Colours, formatNumber, bytesOf, mix, hex and classColour come from shared.js.
  let queue = Promise.resolve();

  // ApiError and transport (how a request travels) come from transport.js.

  function api(method, path, params = {}) {
    const run = queue.then(async () => {
      const answer = await transport.request(method, path, params);
      const body = answer.kind.startsWith("application/json") ? JSON.parse(answer.body) : answer.body;
      if (answer.status >= 400) throw new ApiError(body.error || String(body), answer.status);
      return body;
    });
    queue = run.catch(() => {});
    return run;
  }

  const settled = () => queue;
  const runColour = (id) => RUN_COLOURS[id % RUN_COLOURS.length];

  // A boundary frame as a small image: a continuous colour ramp (no white band on the
  // boundary itself), scaled up smoothly by the browser.
  function boundaryImage(boundary) {
    const n = boundary.grid;
    const off = document.createElement("canvas");
    off.width = off.height = n;
    const ctx = off.getContext("2d");
    const image = ctx.createImageData(n, n);
    const data = image.data;  // written in place: a small array per pixel cost more than the colour
    if (boundary.kind === "score") {
      const v = bytesOf(boundary.values);
      for (let k = 0; k < n * n; k++) {
        const c = scoreColour(v[k]);
        data[4 * k] = c[0]; data[4 * k + 1] = c[1]; data[4 * k + 2] = c[2]; data[4 * k + 3] = 255;
      }
    } else {
      const best = bytesOf(boundary.values), conf = bytesOf(boundary.confidence);
      const k0 = 1 / boundary.classes;
      for (let k = 0; k < n * n; k++) {
        const c = mix(WHITE, classColour(best[k], boundary.classes),
          0.25 + 0.5 * Math.max(0, (conf[k] / 255 - k0) / (1 - k0)));
        data[4 * k] = c[0]; data[4 * k + 1] = c[1]; data[4 * k + 2] = c[2]; data[4 * k + 3] = 255;
      }
    }
    ctx.putImageData(image, 0, 0);
    return off;
  }

  function drawBoundary(canvas, boundary, points) {
    const rect = canvas.getBoundingClientRect();
    const size = Math.max(60, Math.round(rect.width * (window.devicePixelRatio || 1)));
    if (canvas.width !== size) { canvas.width = size; canvas.height = size; }
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(boundaryImage(boundary), 0, 0, size, size);
    const [x0, x1, y0, y1] = points.extent;
    const px = (x) => ((x - x0) / (x1 - x0)) * size, py = (y) => ((y1 - y) / (y1 - y0)) * size;
    const r = Math.max(2, size / 110);
    ctx.lineWidth = Math.max(1, r / 3);
    for (const [x, y, c] of points.train) {
      ctx.beginPath();
      ctx.arc(px(x), py(y), r, 0, 2 * Math.PI);
      ctx.fillStyle = `rgb(${classColour(c, points.classes).join(",")})`;
      ctx.fill();
      ctx.strokeStyle = "rgba(255,255,255,0.8)";
      ctx.stroke();
    }
  }

  return { api, settled, runColour, drawBoundary };
})();
