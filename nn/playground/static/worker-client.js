// The static site's transport: the page's requests go to a Web Worker running chainrule in
// Pyodide (worker.js) instead of to a server. Loaded before playground.js (or lab.js), it sets
// window.chainruleTransport, which those pages use in place of fetch; their code is otherwise the
// served page's. It also shows the loading indicator while Python starts, and opens pages the
// worker writes (the step-through of backprop) in a tab of their own.
"use strict";

(function () {
  const here = document.currentScript.src;
  const worker = new Worker(new URL("worker.js", here), { type: "module" });
  const waiting = new Map();
  let next = 1;

  // -- the loading indicator (the page stays usable: nothing waits on it)
  const box = document.createElement("div");
  box.id = "py-loading";
  box.dataset.testid = "loading";
  box.setAttribute("role", "status");
  box.style.cssText = "position:fixed;right:12px;bottom:12px;z-index:50;background:#fff;" +
    "border:1px solid #9db7d3;border-radius:8px;padding:10px 14px;font:15px system-ui,sans-serif;" +
    "box-shadow:0 2px 10px rgba(0,0,0,.15);min-width:260px";
  const label = document.createElement("div");
  label.textContent = "Loading Python and chainrule in your browser…";
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = 0;
  bar.style.cssText = "width:100%;margin-top:6px";
  box.append(label, bar);
  const show = () => document.body.append(box);
  if (document.body) show(); else document.addEventListener("DOMContentLoaded", show);
  const started = performance.now();
  window.chainruleTimeline = [];  // [what, ms since the page began] of each loading stage

  worker.onmessage = ({ data }) => {
    if (data.progress) {
      if (data.progress.stage) window.chainruleTimeline.push([data.progress.text, performance.now()]);
      bar.value = data.progress.fraction;
      box.dataset.fraction = String(data.progress.fraction);
      label.textContent = `Loading Python and chainrule in your browser: ${data.progress.text} ` +
        `(${Math.round(100 * data.progress.fraction)}%)`;
    } else if (data.ready) {
      window.chainruleReadyMs = performance.now() - started;
      window.chainruleTimeline.push(["ready", performance.now()]);
      box.remove();
    } else if (data.failed) {
      label.textContent = `Python could not start here: ${data.failed}`;
      box.style.borderColor = "#dc2626";
      bar.remove();
    } else if (waiting.has(data.id)) {
      waiting.get(data.id)(data);
      waiting.delete(data.id);
    }
  };
  worker.onerror = (event) => {
    label.textContent = `The worker failed: ${event.message || "it could not load"}`;
    box.style.borderColor = "#dc2626";
  };

  // request(method, path, params) answers what a fetch of path?params would: {status, kind, body}
  function request(method, path, params = {}) {
    const query = Object.fromEntries(new URLSearchParams(params));  // strings, as in a URL
    const id = next++;
    return new Promise((resolve) => {
      waiting.set(id, resolve);
      worker.postMessage({ id, method, path, query });
    });
  }

  window.chainruleTransport = {
    request,
    beacon(path) { request("POST", path); },  // closing is free here: the worker goes with the page
  };

  // A link to a page the API writes (the step-through) is answered by the worker and opened
  // from memory, since no server has that address.
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[href^='/api/'], a[href^='api/']");
    if (!link) return;
    event.preventDefault();
    const tab = window.open("", "_blank");
    const url = new URL(link.getAttribute("href"), location.href);
    const path = url.pathname.slice(url.pathname.indexOf("api/"));  // wherever the site lives
    request("GET", path, Object.fromEntries(url.searchParams)).then((answer) => {
      const page = new Blob([answer.body], { type: answer.kind || "text/html" });
      if (tab) tab.location.href = URL.createObjectURL(page);
    });
  }, true);
})();
