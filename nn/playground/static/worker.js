// chainrule in the browser: this Web Worker runs Python (Pyodide) with chainrule's own sources and
// answers the page's requests with nn.playground.api.handle, the function the web server calls.
// The one idea: the page posts {id, method, path, query} as it would send an HTTP request, and
// gets {id, status, kind, body} back, so a route added in Python works here with no change.
// Every file is fetched with its Subresource Integrity hash from site.json (written at export).
// A module worker (new Worker(url, {type: "module"})): Pyodide's loader is an ES module.

const SITE = new URL("site.json", import.meta.url);
const plainFetch = self.fetch.bind(self);
const integrityOf = new Map();  // absolute URL -> "sha384-..."
const sizeOf = new Map();       // absolute URL -> bytes, for the progress bar
let loadedBytes = 0, totalBytes = 1;

// stage: a new step of the start (the benchmark's timeline), not one more file downloaded
function progress(text, stage = true) {
  self.postMessage({ progress: { text, stage, fraction: Math.min(1, loadedBytes / totalBytes) } });
}

// Pyodide fetches its own files (the WebAssembly, the standard library): each request for a
// file the site lists carries that file's hash, so a changed file is refused by the browser.
self.fetch = async (input, init = {}) => {
  const url = new URL(input instanceof Request ? input.url : input, SITE).href;
  const integrity = integrityOf.get(url);
  let response = await plainFetch(input, integrity ? { ...init, integrity } : init);
  if (sizeOf.has(url)) { loadedBytes += sizeOf.get(url); sizeOf.delete(url); progress("downloading", false); }
  if (url.endsWith(".wasm") && response.ok
      && !(response.headers.get("Content-Type") || "").startsWith("application/wasm")) {
    // a host that does not know .wasm (older web servers): WebAssembly streaming needs the type
    response = new Response(await response.arrayBuffer(), {
      status: 200, headers: { "Content-Type": "application/wasm" } });
  }
  return response;
};

async function checkedText(url) {
  const response = await self.fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

// An ES module fetched with its hash, then imported from memory (import() takes no hash).
async function importChecked(url) {
  const blob = new Blob([await checkedText(url)], { type: "text/javascript" });
  const address = URL.createObjectURL(blob);
  try { return await import(address); } finally { URL.revokeObjectURL(address); }
}

async function start() {
  const site = await (await plainFetch(SITE)).json();
  for (const file of site.files) {
    const url = new URL(file.url, SITE).href;
    integrityOf.set(url, file.integrity);
    sizeOf.set(url, file.size);
  }
  totalBytes = site.files.reduce((sum, f) => sum + f.size, 0);
  const at = (name) => new URL(site.files.find((f) => f.name === name).url, SITE).href;
  progress("downloading Python");
  // Graphviz (WebAssembly) and chainrule load while Python does. Without Graphviz everything
  // but the drawings works (Look inside then says that it cannot draw).
  const graphviz = importChecked(at("viz.js")).then((viz) => viz.instance()).catch((error) => {
    console.warn(`Graphviz could not start, so nothing will be drawn: ${error.message || error}`);
    return null;
  });
  const sources = self.fetch(at("chainrule.zip"));
  const { loadPyodide } = await importChecked(at("pyodide.mjs"));
  const runtime = await importChecked(at("pyodide.asm.mjs"));
  const indexURL = at("pyodide.mjs").replace(/pyodide\.mjs$/, "");
  progress("starting Python (its runtime and standard library)");
  const pyodide = await loadPyodide({
    indexURL, createPyodideModule: runtime.default, packages: [],
    stdout: (line) => console.log(line), stderr: (line) => console.warn(line),
  });
  progress("unpacking chainrule");
  const zip = await sources;
  if (!zip.ok) throw new Error(`chainrule.zip: HTTP ${zip.status}`);
  pyodide.unpackArchive(await zip.arrayBuffer(), "zip", { extractDir: "/home/pyodide/chainrule" });
  progress("starting chainrule");
  const viz = await graphviz;
  self.chainruleHasGraphviz = Boolean(viz);
  self.chainruleRenderDot = (dot) => viz.renderString(dot, { format: "svg", engine: "dot" });
  pyodide.runPython(`
import sys
sys.path.insert(0, "/home/pyodide/chainrule")
import js
from autodiff.viz.render import use_renderer
from nn.playground.api import Registry, handle_text

if js.chainruleHasGraphviz:
    use_renderer(js.chainruleRenderDot)  # Graphviz in WebAssembly instead of the dot program
registry = Registry(idle_seconds=float("inf"))  # one visitor: nothing to free while the tab is open
`);
  const handleText = pyodide.globals.get("handle_text");
  const registry = pyodide.globals.get("registry");
  loadedBytes = totalBytes;
  return (method, path, query) => {
    const answer = handleText(registry, method, path, JSON.stringify(query));
    try { return answer.toJs(); } finally { answer.destroy(); }
  };
}

const ready = start();
ready.then(
  () => self.postMessage({ ready: true }),
  (error) => self.postMessage({ failed: String(error && error.message || error) }),
);

self.onmessage = async ({ data }) => {
  let handle;
  try {
    handle = await ready;
  } catch (error) {
    self.postMessage({ id: data.id, status: 503, kind: "application/json",
                       body: JSON.stringify({ error: `Python did not start: ${error.message || error}` }) });
    return;
  }
  try {
    const [status, kind, body] = handle(data.method, data.path, data.query || {});
    self.postMessage({ id: data.id, status, kind, body });
  } catch (error) {
    self.postMessage({ id: data.id, status: 500, kind: "application/json",
                       body: JSON.stringify({ error: `internal error: ${error.message || error}` }) });
  }
};
