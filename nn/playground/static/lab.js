// chainrule's expression lab: an expression over named Values, drawn after its backward pass.
// Like the playground page, it only shows what Python answers (GET /api/lab): the graph, the
// chain-rule lines of explain(), the gradients. The expression and the values live in the URL.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const DEFAULT = { expr: "(a*b + b**3).tanh()", values: "a=0.5, b=-0.4" };
  // the static site's worker, or the server (the same requests, see playground.js)
  const transport = window.chainruleTransport || {
    async request(method, path, params) {
      const response = await fetch(path + "?" + new URLSearchParams(params), { method });
      return { status: response.status, kind: response.headers.get("Content-Type") || "",
               body: await response.text() };
    },
  };
  const fmt = (x) => (x === null ? "–" : String(Number(x.toPrecision(6))));

  async function draw() {
    const params = { expr: $("lab-expr").value, values: $("lab-values").value };
    history.replaceState(null, "", "?" + new URLSearchParams(params));
    $("lab-step-through").href = "api/lab/backprop?" + new URLSearchParams(params);
    const error = $("error");
    const answer = await transport.request("GET", "api/lab", params);
    const body = JSON.parse(answer.body);
    if (answer.status >= 400) {
      error.textContent = body.error;
      error.hidden = false;
      return;
    }
    error.hidden = true;
    $("lab-graph").innerHTML = body.svg;
    $("lab-explain").textContent = body.explain;
    $("lab-result").textContent = `f = ${fmt(body.data)}; ` +
      body.grads.map((g) => `df/d${g.name} = ${fmt(g.grad)}`).join(", ");
    $("lab-result").dataset.value = body.data_repr;
  }

  const query = new URLSearchParams(location.search);
  $("lab-expr").value = query.get("expr") || DEFAULT.expr;
  $("lab-values").value = query.get("values") || DEFAULT.values;
  $("lab-form").addEventListener("submit", (event) => { event.preventDefault(); draw(); });
  draw().catch((e) => { $("error").textContent = e.message; $("error").hidden = false; });
})();
