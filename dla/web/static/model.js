"use strict";
const graph = document.getElementById("graph");
const modelId = graph.dataset.model;
async function showLayer(i) {
  const L = await api("GET", `/api/models/${modelId}/layers/${i}`);
  const rows = [["index", L.index], ["type", L.type], ["inputs", L.inputs.join(", ")], ["input shape", fmt(L.in_shape)],
                ["output shape", fmt(L.out_shape)], ["parameters", fmt(L.params)], ["MACs", fmt(L.macs)],
                ["precision", L.precision ? L.precision.label : "-"]];
  if (L.cycles) for (const k of ["total_cycles", "compute_cycles", "stall_cycles", "util_pct", "bound", "tiles",
                                 "dram_read_bytes", "dram_write_bytes"]) rows.push([k.replace(/_/g, " "), fmt(L.cycles[k])]);
  const d = document.getElementById("layer-details");
  d.replaceChildren(el("h2", {}, `layer ${L.index} ${L.type}`),
    el("table", {class: "grid", id: "layer-table"}, ...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))));
  for (const g of graph.querySelectorAll("g.node")) g.classList.toggle("selected", g.querySelector("title").textContent === String(i));
}
(async () => {
  const m = await api("GET", `/api/models/${modelId}`);
  document.getElementById("model-title").textContent = m.name;
  document.getElementById("model-summary").textContent =
    `${m.kind}, version ${m.version}, input ${fmt(m.input)}, ${m.layers.length} layers; cycle model: ${fmt(m.total_cycles)} cycles, ${m.fps.toFixed(1)} fps on the default DLA`;
  const r = await fetch(`/api/models/${modelId}/graph.svg`);
  if (!r.ok) {  // e.g. Graphviz missing on the server: say so where the graph would be, not a spinner
    let msg = `HTTP ${r.status}`;
    try { msg = (await r.json()).detail || msg; } catch (_) { /* not JSON: keep the status */ }
    graph.replaceChildren(el("p", {class: "error", id: "graph-error"}, `The graph cannot be drawn: ${msg}`));
    return;
  }
  graph.innerHTML = await r.text();  // our own Graphviz output, not user HTML
  for (const g of graph.querySelectorAll("g.node")) {
    const idx = g.querySelector("title").textContent;
    if (idx !== "-1") g.addEventListener("click", () => showLayer(idx));
  }
})();
