// Shared helpers: API calls with the CSRF header, errors shown in #error, file pickers, job progress (SSE).
"use strict";
function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)dla_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}
function showError(msg) {
  const el = document.getElementById("error");
  if (!el) { alert(msg); return; }
  el.textContent = msg; el.hidden = !msg;
}
async function api(method, url, body, raw) {
  const opts = {method, headers: {"X-CSRF-Token": csrfToken()}, credentials: "same-origin"};
  if (raw !== undefined) { opts.body = raw; }
  else if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  const r = await fetch(url, opts);
  if (r.status === 401 && !location.pathname.startsWith("/login")) { location.href = "/login"; throw new Error("not logged in"); }
  const data = r.headers.get("content-type", "").includes("json") ? await r.json() : await r.text();
  if (!r.ok) { const msg = (data && data.detail) ? data.detail : ("HTTP " + r.status); showError(msg); throw new Error(msg); }
  showError("");
  return data;
}
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
function fmt(v) {
  if (typeof v === "number") return Number.isInteger(v) ? v.toLocaleString() : v.toPrecision(4);
  if (Array.isArray(v)) return v.join("x");
  return v === null || v === undefined ? "" : String(v);
}
function fillTable(table, rows, columns) {
  table.replaceChildren();
  if (!rows.length) return;
  const cols = columns || Object.keys(rows[0]);
  table.append(el("thead", {}, el("tr", {}, ...cols.map(c => el("th", {}, c)))));
  const tb = el("tbody");
  for (const r of rows) tb.append(el("tr", {}, ...cols.map(c => el("td", {}, fmt(r[c])))));
  table.append(tb);
}
// Fill <select class="pick-model|pick-weights|pick-image"> from the user's files.
async function fillPickers() {
  const {files} = await api("GET", "/api/files");
  const by = kinds => files.filter(f => kinds.includes(f.kind));
  const params = new URLSearchParams(location.search);
  for (const s of document.querySelectorAll("select.pick-model")) {
    const kinds = (s.dataset.kinds || "cfg,qnet").split(",");
    s.replaceChildren(...by(kinds).map(f => el("option", {value: f.id}, f.name)));
    if (params.get("model")) s.value = params.get("model");
  }
  for (const s of document.querySelectorAll("select.pick-weights"))
    s.replaceChildren(el("option", {value: ""}, "(seeded random weights)"), ...by(["weights"]).map(f => el("option", {value: f.id}, f.name)));
  for (const s of document.querySelectorAll("select.pick-image")) {
    const opts = by(["image"]).map(f => el("option", {value: f.id}, f.name));
    s.replaceChildren(...(s.dataset.optional ? [el("option", {value: ""}, "(synthetic)")] : []), ...opts);
  }
  for (const s of document.querySelectorAll("select.pick-images"))  // several: a calibration set
    s.replaceChildren(...by(["image"]).map(f => el("option", {value: f.id}, f.name)));
  const kinds = Object.fromEntries(files.map(f => [String(f.id), f.kind]));
  for (const w of document.querySelectorAll("select.pick-weights")) {
    const model = w.form.querySelector("select.pick-model"), note = w.form.querySelector(".weights-note");
    const update = () => matchWeights(model, w, note, kinds);
    model.addEventListener("change", update);
    w.addEventListener("change", () => warnRandom(model, w, note, kinds, null));
    await update();
  }
  return files;
}
// Pre-select the user's .weights that fits the chosen cfg (exact size, same name first).
async function matchWeights(model, w, note, kinds) {
  const cfg = kinds[model.value] === "cfg";
  w.disabled = !cfg;
  if (!cfg) { w.value = ""; warnRandom(model, w, note, kinds, null); return; }
  let m = null;
  const asked = model.value;
  try { m = await api("GET", `/api/files/${asked}/weights`); }
  catch (e) { return; }  // the message is shown in #error; the form stays usable
  if (model.value !== asked) return;  // another cfg was chosen meanwhile: its own answer decides
  w.value = m.best === null ? "" : String(m.best);
  warnRandom(model, w, note, kinds, m);
}
// Say out loud when a cfg runs on seeded random weights (and why no file was chosen).
function warnRandom(model, w, note, kinds, m) {
  if (!note) return;
  const random = kinds[model.value] === "cfg" && !w.value;
  note.hidden = !random;
  if (!random) return;
  note.textContent = "Seeded random weights: results are those of a random network (detections are meaningless, " +
    "usually none). Upload the cfg's .weights to get real results.";
  const near = m ? m.weights.filter(x => x.same_stem && !x.fits) : [];
  for (const x of near) note.textContent += ` ${x.name} does not fit this cfg: ${fmt(x.size)} bytes, expected ${fmt(x.expected_size)}.`;
}
// Calibration: synthetic images (a count), the image, or a set of the user's photos.
function calibOptions(form) {
  const src = form.querySelector("select.calib-source").value;
  const ids = [...form.querySelector("select.pick-images").selectedOptions].map(o => +o.value);
  return {calib: src, calib_n: +form.querySelector(".calib-count input").value, calib_image_ids: src === "images" ? ids : []};
}
document.addEventListener("change", ev => {
  if (!ev.target.matches("select.calib-source")) return;
  const form = ev.target.form;
  form.querySelector(".calib-count").hidden = ev.target.value !== "synthetic";
  form.querySelector(".calib-set").hidden = ev.target.value !== "images";
});
// Follow a job by server-sent events; resolves with the finished job.
function followJob(id, onUpdate) {
  return new Promise(resolve => {
    const es = new EventSource(`/api/jobs/${id}/events`);
    es.onmessage = ev => {
      const job = JSON.parse(ev.data);
      onUpdate(job);
      if (["done", "failed", "cancelled", "interrupted"].includes(job.status)) { es.close(); resolve(job); }
    };
    es.onerror = async () => { es.close(); const job = await api("GET", `/api/jobs/${id}`); onUpdate(job); resolve(job); };
  });
}
function jobUi(job) {
  document.getElementById("job").hidden = false;
  document.getElementById("progress").value = job.progress;
  document.getElementById("status").textContent = `${job.status}: ${job.message}`;
}
document.addEventListener("DOMContentLoaded", () => {
  const lo = document.getElementById("logout");
  if (lo) lo.addEventListener("click", async () => { await api("POST", "/api/logout"); location.href = "/login"; });
});
