"use strict";
async function refresh() {
  const {files, used, quota, usage} = await api("GET", "/api/files");
  const u = document.getElementById("usage");
  u.textContent = usage; u.title = `${fmt(used)} of ${fmt(quota)} bytes`;
  const tb = document.querySelector("#file-list tbody");
  tb.replaceChildren(...files.map(f => {
    const actions = el("td", {},
      el("a", {href: `/api/files/${f.id}/download`, class: "download"}, "download"), " ",
      el("button", {type: "button", class: "rename", onclick: () => rename(f)}, "rename"), " ",
      el("button", {type: "button", class: "delete", onclick: () => remove(f)}, "delete"));
    if (f.kind === "image") actions.append(" ", el("button", {type: "button", class: "augment", onclick: () => augment(f)}, "augment ×5"));
    if (f.kind === "cfg" || f.kind === "qnet") actions.append(" ",
      el("a", {href: `/models/${f.id}`, class: "open-model"}, "graph"), " ",
      el("a", {href: `/run?model=${f.id}`}, "run"), " ", el("a", {href: `/step?model=${f.id}`}, "step"));
    return el("tr", {"data-name": f.name, "data-id": f.id}, el("td", {}, f.name), el("td", {}, f.kind),
              el("td", {title: `${fmt(f.size)} bytes`}, f.size_text), el("td", {}, f.version), actions);
  }));
  const {jobs} = await api("GET", "/api/jobs");
  document.querySelector("#job-list tbody").replaceChildren(...jobs.map(j => el("tr", {},
    el("td", {}, j.id), el("td", {}, j.kind), el("td", {}, j.status), el("td", {}, j.progress + "%"),
    el("td", {}, j.message),
    el("td", {}, ["queued", "running"].includes(j.status)
      ? el("button", {type: "button", onclick: async () => { await api("POST", `/api/jobs/${j.id}/cancel`); refresh(); }}, "cancel")
      : el("button", {type: "button", title: "delete this job's outputs (files it kept stay)",
                      onclick: async () => { await api("DELETE", `/api/jobs/${j.id}`); refresh(); }}, "delete")))));
}
async function rename(f) {
  const name = prompt("New name", f.name);
  if (!name || name === f.name) return;
  await api("PATCH", `/api/files/${f.id}`, {name, version: f.version}); refresh();
}
async function remove(f) {
  if (!confirm(`Delete ${f.name}?`)) return;
  await api("DELETE", `/api/files/${f.id}`); refresh();
}
async function augment(f) { await api("POST", `/api/files/${f.id}/augment`); refresh(); }
document.getElementById("upload-input").addEventListener("change", async ev => {
  const status = document.getElementById("upload-status");
  for (const file of ev.target.files) {
    status.textContent = `uploading ${file.name}…`;
    try { await api("PUT", `/api/files?name=${encodeURIComponent(file.name)}`, undefined, file); }
    catch (e) { status.textContent = `${file.name}: ${e.message}`; refresh(); return; }
  }
  status.textContent = "uploaded"; ev.target.value = ""; refresh();
});
// A .qnet folder as the CLI writes it: each folder holding model.json + weights.npz is one upload.
document.getElementById("upload-qnet-dir").addEventListener("change", async ev => {
  const status = document.getElementById("upload-status");
  const dirs = new Map();
  for (const f of ev.target.files) {
    const parts = f.webkitRelativePath.split("/");
    const dir = parts.slice(0, -1).join("/");
    if (!dirs.has(dir)) dirs.set(dir, new FormData());
    if (["model.json", "weights.npz"].includes(f.name)) dirs.get(dir).append(f.name, f);
  }
  const found = [...dirs].filter(([, fd]) => fd.has("model.json") || fd.has("weights.npz"));
  if (!found.length) status.textContent = "no model.json / weights.npz in that folder: is it a .qnet?";
  for (const [dir, fd] of found) {
    const name = dir.split("/").pop();
    status.textContent = `uploading ${name}…`;
    try { await api("POST", `/api/files/qnet-folder?name=${encodeURIComponent(name)}`, undefined, fd); }
    catch (e) { status.textContent = `${name}: ${e.message}`; refresh(); return; }
    status.textContent = "uploaded";
  }
  ev.target.value = ""; refresh();
});
refresh();
