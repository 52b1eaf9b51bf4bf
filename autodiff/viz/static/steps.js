(function () {
  const data = JSON.parse(document.getElementById("cr-data").textContent);
  const steps = data.steps, groups = data.groups;
  const UNKNOWN = {text: "?", fill: "#ffffff", ink: "#888888"};
  const ACCUMULATING = document.body.dataset.accumulating;
  const $ = id => document.getElementById(id);
  const graph = $("cr-graph");
  let k = 0, timer = null, grouped = data.grouped;
  const groupOf = new Array(steps.length);
  groups.forEach((g, i) => { for (let j = g.first; j <= g.last; j++) groupOf[j] = i; });

  // Each box's last cell is its gradient: Graphviz draws a cell as its background polygon
  // followed by its text. Centre the text in the cell, so numbers of any width stay inside.
  const cells = {};
  for (const id of data.ids) {
    const g = $(id);
    const texts = g ? g.querySelectorAll(":scope > text") : [];
    if (!texts.length) continue;
    const text = texts[texts.length - 1], box = text.previousElementSibling;
    if (box && box.tagName === "polygon") {
      const xs = box.getAttribute("points").trim().split(/\s+/).map(p => +p.split(",")[0]);
      text.setAttribute("x", (Math.min(...xs) + Math.max(...xs)) / 2);
      text.setAttribute("text-anchor", "middle");
    }
    cells[id] = {text, box};
  }
  function paint(id, c) {
    const cell = cells[id];
    if (!cell) return;
    cell.text.textContent = "grad " + c.text;
    cell.text.setAttribute("fill", c.ink);
    if (cell.box) cell.box.setAttribute("fill", c.fill);
  }
  function mark(id, cls) {
    const el = $(id);
    if (el) el.classList.add(cls);
    return el;
  }

  // The two lists, built from the data (as text: no label is ever read as markup).
  const stepItems = steps.map((s, i) => {
    const li = document.createElement("li");
    li.textContent = s.item;
    li.onclick = () => { stop(); show(i + 1); };
    return li;
  });
  $("cr-steps").append(...stepItems);
  const groupItems = groups.map((g, i) => {
    const li = document.createElement("li");
    li.textContent = (i + 1) + ". " + g.text;
    for (let j = g.first; j <= g.last; j++) {
      const share = document.createElement("span");
      share.className = "cr-share";
      share.textContent = steps[j].share;
      li.append(share);
    }
    li.onclick = () => { stop(); show(g.last + 1); };
    return li;
  });
  $("cr-groups").append(...groupItems);

  // Keep `el` in view inside its scrolling panel (only when it is not already in view).
  function reveal(el, panel) {
    if (!el || !panel) return;
    const r = el.getBoundingClientRect(), p = panel.getBoundingClientRect();
    if (r.left >= p.left && r.right <= p.right && r.top >= p.top && r.bottom <= p.bottom) return;
    panel.scrollLeft += (r.left + r.right) / 2 - (p.left + p.right) / 2;
    panel.scrollTop += (r.top + r.bottom) / 2 - (p.top + p.bottom) / 2;
  }

  function show(n) {
    k = Math.max(0, Math.min(steps.length, n));
    for (const id of data.ids) paint(id, UNKNOWN);
    paint(data.root, data.rootCell);
    for (let i = 0; i < k; i++) {
      const s = steps[i];
      paint(s.to, s.final ? s.cell : {text: s.total, fill: ACCUMULATING, ink: "#000000"});
    }
    for (const cls of ["cr-to", "cr-from", "cr-op", "cr-edge", "cr-out"]) {
      document.querySelectorAll("." + cls).forEach(el => el.classList.remove(cls));
    }
    const g = k ? groupOf[k - 1] : -1;
    stepItems.forEach((li, i) => {
      li.classList.toggle("cr-done", i < k);
      li.classList.toggle("cr-current", i === k - 1);
    });
    groupItems.forEach((li, i) => {
      li.classList.toggle("cr-done", i <= g);
      li.classList.toggle("cr-current", i === g);
    });
    const now = $("cr-now");
    let focus = null;
    if (k === 0) {
      now.textContent = data.header + "\nPress Next (or the right arrow) to take the first step.";
      focus = mark(data.root, "cr-from");
    } else if (grouped) {
      const group = groups[g];
      const lines = [(g + 1) + ". " + group.text];
      for (let j = group.first; j < k; j++) {
        const s = steps[j];
        mark(s.to, "cr-to"); mark(s.edge, "cr-edge");
        lines.push("    " + s.share);
      }
      const s = steps[group.first];
      mark(s.from, "cr-from"); mark(s.op + "_out", "cr-out");
      focus = mark(s.op, "cr-op");
      now.textContent = lines.join("\n");
    } else {
      const s = steps[k - 1];
      mark(s.from, "cr-from"); mark(s.op, "cr-op");
      mark(s.edge, "cr-edge"); mark(s.op + "_out", "cr-out");
      focus = mark(s.to, "cr-to");
      now.textContent = s.text;
    }
    const current = grouped ? groupItems[g] : stepItems[k - 1];
    if (current) reveal(current, $(grouped ? "cr-groups" : "cr-steps"));
    if (graph.classList.contains("cr-actual")) reveal(focus, graph);
    $("cr-counter").textContent = grouped
      ? "Node " + (g + 1) + " of " + groups.length
      : "Step " + k + " of " + steps.length;
    $("cr-prev").disabled = k === 0;
    $("cr-next").disabled = k === steps.length;
    document.body.dataset.step = k;
    document.body.dataset.group = g + 1;
  }
  // Next and Previous move one step, or one node's group of steps.
  function next() {
    if (!grouped || k === steps.length) return show(k + 1);
    // the group after the one that ends with step k (k is at a group's end in this mode)
    const g = k === 0 ? 0 : groupOf[k - 1] + (k - 1 === groups[groupOf[k - 1]].last ? 1 : 0);
    show(groups[g].last + 1);
  }
  function previous() {
    if (!grouped || k === 0) return show(k - 1);
    const g = groupOf[k - 1];
    show(g === 0 ? 0 : groups[g - 1].last + 1);
  }
  function stop() {
    if (timer) clearInterval(timer);
    timer = null;
    $("cr-play").textContent = "Play";
  }
  function play() {
    if (timer) return stop();
    if (k === steps.length) show(0);
    $("cr-play").textContent = "Pause";
    const speed = +$("cr-speed").value;
    timer = setInterval(() => { if (k >= steps.length) stop(); else next(); }, speed);
  }
  function setGrouped(on) {
    grouped = on;
    document.body.classList.toggle("cr-grouped", on);
    $("cr-group").checked = on;
    // in groups, the current position is the end of the current node's group
    show(on && k ? groups[groupOf[k - 1]].last + 1 : k);
  }
  function zoom(actual) {
    graph.classList.toggle("cr-actual", actual);
    $("cr-zoom").textContent = actual ? "Fit" : "Actual size";
    show(k);
  }
  function find() {
    const name = $("cr-find").value.trim();
    if (!name) return;
    const i = data.finals[name];
    $("cr-found").textContent = i === undefined ? "no gradient for " + JSON.stringify(name) : "";
    if (i === undefined) return;
    stop();
    show(grouped ? groups[groupOf[i]].last + 1 : i + 1);
  }
  $("cr-prev").onclick = () => { stop(); previous(); };
  $("cr-next").onclick = () => { stop(); next(); };
  $("cr-reset").onclick = () => { stop(); show(0); };
  $("cr-play").onclick = play;
  $("cr-speed").onchange = () => { if (timer) { stop(); play(); } };
  $("cr-group").onchange = e => setGrouped(e.target.checked);
  $("cr-zoom").onclick = () => zoom(!graph.classList.contains("cr-actual"));
  $("cr-find").onchange = find;
  $("cr-find").onkeydown = e => { if (e.key === "Enter") find(); e.stopPropagation(); };
  document.addEventListener("keydown", e => {
    // the keys belong to the page unless a text field or a menu is being used; space is
    // Play / Pause even when a button has the focus (it would click that button)
    if (e.target.id === "cr-find" || e.target.tagName === "SELECT") return;
    if (e.key === "ArrowRight") { stop(); next(); }
    else if (e.key === "ArrowLeft") { stop(); previous(); }
    else if (e.key === " ") { e.preventDefault(); play(); }
  });
  document.body.classList.toggle("cr-grouped", grouped);
  // A drawing that would be too small to read when fitted starts at actual size.
  const svg = graph.querySelector("svg");
  const fit = Math.min(graph.clientWidth / svg.width.baseVal.value,
                       graph.clientHeight / svg.height.baseVal.value);
  if (fit < 0.6) zoom(true); else show(0);
})();
