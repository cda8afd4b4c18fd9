"use strict";
let current = null;
fillPickers();
document.getElementById("run-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const modes = ["float", ...[...document.querySelectorAll("input[name=mode]:checked")].map(i => i.value).filter(m => m !== "float")];
  const w = document.getElementById("weights").value;
  const body = {model_id: +document.getElementById("model").value, weights_id: w ? +w : null,
                image_id: +document.getElementById("image").value, modes, darknet: document.getElementById("darknet").value,
                quant: {...calibOptions(ev.target), activations: document.getElementById("activations").value},
                save_qnet: document.getElementById("save-qnet").checked};
  const minDb = document.getElementById("min-sqnr").value;
  if (minDb !== "") body.min_sqnr_db = +minDb;
  const job = await api("POST", "/api/jobs/run", body);
  current = job.id;
  document.getElementById("results").hidden = true;
  document.getElementById("cancel").hidden = false;
  const done = await followJob(job.id, jobUi);
  document.getElementById("cancel").hidden = true;
  if (done.status === "done") showResults(done);
});
document.getElementById("cancel").addEventListener("click", () => current && api("POST", `/api/jobs/${current}/cancel`));
function showResults(job) {
  const r = job.result;
  const pics = document.getElementById("detections");
  const random = document.getElementById("random-result");
  random.hidden = !r.random_weights;
  random.textContent = r.random_weights ? "This run used seeded random weights (no .weights file was chosen): the " +
    "modes are compared on a random network, and its detections mean nothing (a random network usually finds none). " +
    "Upload the cfg's .weights and choose it for real results." : "";
  const caption = m => {
    const n = (r.detections[m] || []).length;
    return `${m.toUpperCase()}: ${n} detection${n === 1 ? "" : "s"}` + (n === 0 && r.random_weights ? " (random weights)" : "");
  };
  pics.replaceChildren(...r.modes.filter(m => m in r.detections).map(m => el("figure", {}, el("figcaption", {}, caption(m)),
    el("img", {src: `/api/jobs/${job.id}/files/detections-${m}.png`, id: `det-${m}`, alt: m}))));
  const dl = document.getElementById("downloads");
  dl.replaceChildren("Download: ",
    el("a", {href: `/api/jobs/${job.id}/files/${r.report}`, id: "download-report"}, "report (HTML, kept in your files)"), " · ",
    el("a", {href: `/api/jobs/${job.id}/files/${r.zip}`, id: "download-zip"}, "everything (zip)"), " · ",
    el("a", {href: `/api/jobs/${job.id}/files/layers.csv`, id: "download-csv"}, "CSV"), " · ",
    el("a", {href: `/api/jobs/${job.id}/files/summary.json`, id: "download-json"}, "JSON"));
  document.getElementById("checks").replaceChildren(...(r.checks.length ? ["Checks: ", ...r.checks.map(c =>
    el("span", {class: c.passed ? "pass" : "fail"}, `${c.name}: ${c.passed ? "pass" : "FAIL"} (${fmt(c.value)}) `))] : []));
  if (r.qnet) showQnet(job, dl);
  const cols = ["index", "type", "shape", "precision"];
  for (const m of r.modes) if (m !== "float") cols.push(`${m}_sqnr_db`, `${m}_max_abs`, `${m}_cosine`);
  if (r.modes.includes("int")) cols.push("int_saturated_pct");
  fillTable(document.getElementById("metrics"), r.layers, r.layers.length ? cols.filter(c => c in r.layers[0]) : cols);
  document.getElementById("results").hidden = false;
}
// The calibrated model: kept in the user's files (a link to STEP), or only in the job's
// outputs (a zip download and a button to keep it).
function showQnet(job, dl) {
  const r = job.result, box = el("span", {id: "qnet-box"});
  dl.querySelector("#qnet-box")?.remove();
  dl.append(box);
  const kept = (r.kept || {})[r.qnet];
  if (kept) {
    box.append(" · calibrated model kept as ", el("a", {href: `/step?model=${kept.id}`, id: "step-link"}, kept.name), " (open in STEP)");
    return;
  }
  const why = (r.not_kept || {})[r.qnet];  // asked for, but no room in the quota
  box.append(" · calibrated model: ", el("a", {href: `/api/jobs/${job.id}/files/${r.qnet}`, id: "download-qnet"}, `${r.qnet} (zip)`), " ",
    ...(why ? [el("span", {class: "fail", id: "qnet-not-kept"}, `not saved to your files: ${why}`), " "] : []),
    el("button", {type: "button", id: "keep-qnet", onclick: async () => {
      const f = await api("POST", `/api/jobs/${job.id}/keep`, {name: r.qnet});
      r.kept = {...(r.kept || {}), [r.qnet]: {id: f.id, name: f.name}};
      showQnet(job, dl);
    }}, "save to my files"));
}
