"use strict";
let sid = null, state = null;
const $ = id => document.getElementById(id);
function say(text) { const c = $("console"); c.textContent += text; c.scrollTop = c.scrollHeight; }
function picture(img, key) {
  return new Promise(resolve => {
    img.onload = img.onerror = () => resolve();
    img.src = `/api/step/${sid}/picture/${key}.png?g=${state.generation}&i=${state.index}&t=${Date.now()}`;
    if (img.parentElement.tagName === "A") img.parentElement.href = img.src;  // a click: full size
  });
}
const num = v => typeof v === "string" ? v : fmt(v);  // "inf" (bit-identical) stays as it is
function numbers(table, rows) {
  table.replaceChildren(el("tbody", {}, ...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))));
}
// What the re-run changed (the Stepper's own numbers: the same data `dla step` prints).
function showRerun(d) {
  const rows = [["layer", d.layer], ["outputs changed", `${fmt(d.changed)} of ${fmt(d.total)}`],
    ["channels changed", d.channels.length ? d.channels.slice(0, 24).join(", ") + (d.channels.length > 24 ? ` … (${d.channels.length})` : "") : "none"],
    ["SQNR after vs before", `${num(d.sqnr_db)} dB`], ["max |Δ|", num(d.max_abs)], ["mean |Δ|", num(d.mean_abs)],
    ["cosine", typeof d.cosine === "number" ? d.cosine.toFixed(6) : d.cosine]];
  if (d.vs_unedited !== null && d.vs_unedited !== undefined)
    rows.push(["vs the unedited run", d.vs_unedited === 0 ? "bit-identical" : `${fmt(d.vs_unedited)} outputs differ`]);
  numbers($("diff-numbers"), rows);
}
function showCross(c) {
  numbers($("cross-numbers"), [["layer", c.layer], ["modes", `${c.mode.toUpperCase()} vs ${c.other.toUpperCase()} (float is the reference)`],
    ["SQNR", `${num(c.sqnr_db)} dB`], ["max |error|", num(c.max_abs)], ["mean |error|", num(c.mean_abs)],
    ["cosine", typeof c.cosine === "number" ? c.cosine.toFixed(6) : c.cosine]]);
}
// Captions name the layer in text (the title inside a scaled-down picture is too small to read).
function caption(img, what, s, tensor) {
  const L = s.layers[s.index];
  const shape = tensor === "input" ? s.layer.in_shape : tensor === "weights" ? s.weights_shape : L.shape;
  const dims = Array.isArray(shape) ? shape.join("×") : String(shape || "").replaceAll("x", "×");
  const fig = img.closest("figure").querySelector("figcaption");
  fig.replaceChildren(what, el("span", {class: "sub"}, `layer ${L.index} ${L.type}, ${tensor} ${dims}, ${s.mode.toUpperCase()}`));
}
async function render(s) {
  state = s; sid = s.id;
  $("stepper").hidden = false;
  const n = s.layers.length;
  $("where").textContent = `${s.model} on ${s.image}, ${s.mode.toUpperCase()}: ` +
    (s.index < 0 ? `no layer run yet (0..${n - 1})` : `layer ${s.index} of 0..${n - 1}`);
  $("goto-input").max = n - 1;
  $("edits").replaceChildren(...s.edits.map(e => el("li", {}, `layer ${e.layer}: ${e.description} (${e.changed} changed)`)));
  if (s.index < 0) return;
  const L = s.layer;
  fillTable($("layer-info"), Object.entries(L).filter(([k]) => k !== "in_scales").map(([k, v]) => ({field: k, value: fmt(v)})));
  fillTable($("stats"), Object.entries(s.stats).map(([t, st]) => ({tensor: t, min: st.min, max: st.max, mean: st.mean, std: st.std,
    "zeros %": st.zeros_pct, "sat %": st.saturated_pct})));
  $("weights-fig").hidden = !s.stats.weights;
  $("diff-view").hidden = !(s.has_before && s.rerun);
  if (s.has_before && s.rerun) showRerun(s.rerun);
  for (const [id, what, tensor] of [["pic-input", "input feature maps", "input"], ["pic-output", "output feature maps", "output"],
                                    ["pic-hist", "output histogram", "output"], ["pic-weights", "weights", "weights"],
                                    ["pic-after", "after the re-run", "output"], ["pic-before", "before the re-run", "output"]])
    if (tensor !== "weights" || s.weights_shape) caption($(id), what, s, tensor);
  const loads = [picture($("pic-output"), "output_grid"), picture($("pic-input"), "input_grid"), picture($("pic-hist"), "output_hist")];
  if (s.stats.weights) loads.push(picture($("pic-weights"), "weights_grid"));
  if (s.has_before) {
    $("pic-before").src = $("link-before").href = `/api/step/${sid}/picture/before.png?t=${Date.now()}`;
    loads.push(picture($("pic-after"), "output_grid"));
  }
  await Promise.all(loads);
  document.body.dataset.shown = `${s.index}:${s.generation}`;  // for tests and the benchmark
}
// The console's line(s) for a command's result (its data: dla/debugger/results.py).
const g = (v, digits) => typeof v === "number" ? String(Number(v.toPrecision(digits))) : String(v);
const dims = shape => shape.join("x");
const metrics = m => `SQNR ${typeof m.sqnr_db === "number" ? m.sqnr_db.toFixed(2) : m.sqnr_db} dB, ` +
  `max abs error ${g(m.max_abs, 4)}, mean abs error ${g(m.mean_abs, 4)}, cosine ${typeof m.cosine === "number" ? m.cosine.toFixed(6) : m.cosine}`;
function describe(r) {
  switch (r.kind) {
    case "moved": {
      let t = `layer ${r.layer} ${r.type} ${dims(r.in_shape)} -> ${dims(r.out_shape)}: ${r.dtype}`;
      if (r.scale !== null) t += `, scale ${g(r.scale, 6)}`;
      if (r.range) t += `, range [${g(r.range[0], 4)}, ${g(r.range[1], 4)}]`;
      if (r.saturated || r.overflow) t += `, ${fmt(r.saturated)} saturated, ${fmt(r.overflow)} overflowed`;
      if (r.host_float) t += " (host layer, float)";
      if (r.ran > 0) t += `\n  ran ${r.ran} layer(s) in ${Math.round(r.ms)} ms`;
      else if (r.back_from !== null) t += `\n  back at layer ${r.layer}: layers ${r.layer + 1}..${r.back_from} will run again`;
      return t;
    }
    case "info": {
      const src = r.inputs.map(i => i === -1 ? "the network input" : `layer ${i}`).join(", ");
      const lines = [r.table_header, r.table_row, `  inputs: ${src}; ${r.host ? "runs on the host in float" : `runs in ${r.mode}`}`,
        r.out_scale === null ? "  scales: none (a float model)" : `  scales: input ${r.in_scales.map(s => g(s, 6)).join(", ")}; output ${g(r.out_scale, 6)}`];
      if (r.weight_scales) {
        const ws = r.weight_scales, lo = Math.min(...ws), hi = Math.max(...ws);
        lines.push(`  weight scale: ${lo === hi ? `${g(lo, 6)} (per tensor)` : `${g(lo, 6)}..${g(hi, 6)} (per channel, ${ws.length})`}`);
      }
      lines.push(`  edits in effect: ${r.edits} (${r.edits_here} at this layer); layers run: 0..${r.layer}`);
      return lines.join("\n");
    }
    case "stats":
      return r.tensors.map(t => [`layer ${r.layer} ${r.type} ${t.label}: ${dims(t.shape)} ${t.dtype}${t.scale_text ? ", " + t.scale_text : ""}`,
        ...t.rows.map(w => `  ${w.name}: min ${g(w.min, 5)}, max ${g(w.max, 5)}, mean ${g(w.mean, 5)}, std ${g(w.std, 5)}, ` +
                          `zeros ${w.zeros_pct.toFixed(2)} %` + (w.saturated_pct === null ? "" : `, saturated ${w.saturated_pct.toFixed(2)} %`))].join("\n")).join("\n");
    case "pictures":
      return [...r.pictures.map(p => `${p.kind}: ${p.key}${p.url ? ` (${p.url})` : ""}`),
              ...(r.cross ? [`  ${r.cross.mode} vs ${r.cross.other}: ${metrics(r.cross)}`] : [])].join("\n");
    case "edited":
      return `edited layer ${r.layer}: ${r.change}: ${r.changed} weight(s) changed${r.was !== null ? ` (was ${g(r.was, 7)})` : ""}`;
    case "undone":
      return `undone: layer ${r.layer}: ${r.change} (${r.restored} weight(s) restored)` + (r.current ? "" : `; 'goto ${r.layer}' and re-run to recompute it`);
    case "rerun": {
      let t = `re-run layer ${r.layer} (${r.type}): ${fmt(r.changed)} of ${fmt(r.total)} outputs changed`;
      if (r.changed) t += `, in channel(s) ${r.channels.slice(0, 16).join(", ")}${r.channels.length > 16 ? `, … (${r.channels.length} in all)` : ""}`;
      t += `\n  new vs previous output: ${metrics(r)}`;
      if (r.vs_unedited !== null) t += r.vs_unedited === 0 ? "\n  vs the unedited run: bit-identical" : `\n  vs the unedited run: ${fmt(r.vs_unedited)} outputs differ`;
      return t;
    }
    case "cross":
      return `cross layer ${r.layer} (${r.type}): ${r.mode} vs ${r.other} from the same input (float is the reference)\n  ${metrics(r)}` +
        (r.continued ? `\n  layer ${r.layer} now holds the ${r.other} output; the next layers run from it` : "");
    case "help": return r.text;
    default: return JSON.stringify(r);
  }
}
async function command(line) {
  say(`> ${line}\n`);
  try { const r = await api("POST", `/api/step/${sid}/command`, {command: line}); say(describe(r.result) + "\n"); $("cross-view").hidden = true; await render(r.state); return r; }
  catch (e) { say(`error: ${e.message}\n`); }
}
$("open-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const w = $("weights").value;
  const s = await api("POST", "/api/step", {model_id: +$("model").value, image_id: +$("image").value, mode: $("mode").value,
                                            weights_id: w && !$("weights").disabled ? +w : null});
  $("console").textContent = "";
  say(`opened ${s.model} (${s.layers.length} layers) on ${s.image} in ${s.mode.toUpperCase()}\n`);
  $("save-name").value = s.model.replace(/\.(qnet|cfg)$/, "") + "-edited.qnet";
  await render(s);
});
$("sessions").addEventListener("change", async ev => { if (ev.target.value) render(await api("GET", `/api/step/${ev.target.value}`)); });
$("next").addEventListener("click", () => command("next"));
$("goto").addEventListener("click", () => command(`goto ${$("goto-input").value}`));
$("rerun").addEventListener("click", () => command("rerun"));
$("undo").addEventListener("click", () => command("undo"));
$("cross").addEventListener("click", async () => {
  const r = await command("cross");
  if (r && r.state.cross) {
    showCross(r.state.cross);
    $("cross-view").hidden = false;
    await picture($("pic-cross"), "cross_scatter");
  }
});
$("edit-apply").addEventListener("click", () => command(`edit w[${$("edit-index").value}]=${$("edit-value").value}`));
$("scale-apply").addEventListener("click", () => command(`edit scale ${$("scale-ch").value} ${$("scale-f").value}`));
$("npy-input").addEventListener("change", async ev => {
  const f = ev.target.files[0]; if (!f) return;
  say(`> edit load ${f.name}\n`);
  try { const r = await api("PUT", `/api/step/${sid}/weights`, undefined, f); say(describe(r.result) + "\n"); await render(r.state); }
  catch (e) { say(`error: ${e.message}\n`); }
  ev.target.value = "";
});
$("save").addEventListener("click", async () => {
  const name = $("save-name").value;
  const same = name === state.model;
  try {
    const f = await api("POST", `/api/step/${sid}/save`, {name, overwrite_version: same ? state.model_version : null});
    say(`saved ${f.name} (version ${f.version})\n`);
  } catch (e) { say(`error: ${e.message}\n`); }
});
(async () => {
  await fillPickers();
  const {sessions} = await api("GET", "/api/step");
  $("sessions").replaceChildren(el("option", {value: ""}, "—"), ...sessions.map(s => el("option", {value: s.id}, `${s.model} / ${s.image} (${s.mode}, layer ${s.index})`)));
})();
