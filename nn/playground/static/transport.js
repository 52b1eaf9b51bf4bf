// chainrule playground: how a page's requests travel, shared by every page (one run, race,
// surface). To the server with fetch, unless a transport was set before this script ran (the
// static site's worker-client.js: the same requests, answered by a Web Worker running the same
// Python). request() answers {status, kind, body} with body as text.
"use strict";

class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

const transport = window.chainruleTransport || {
  async request(method, path, params) {
    const query = new URLSearchParams(params).toString();
    let response;
    try {
      response = await fetch(path + (query ? "?" + query : ""), { method });
    } catch (error) {
      throw new ApiError("The playground's server does not answer: is it still running?", 0);
    }
    return { status: response.status, kind: response.headers.get("Content-Type") || "",
             body: await response.text() };
  },
  beacon(path) { navigator.sendBeacon(path); },
};
