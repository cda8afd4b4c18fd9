"use strict";
let current = null;
fillPickers();
document.getElementById("run-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const modes = ["float", ...[...document.querySelectorAll("input[name=mode]:checked")].map(i => i.value).filter(m => m !== "float")];
  const w = document.getElementById("weights").value;
  const body = {model_id: +document.getElementById("model").value, weights_id: w ? +w : null,
                image_id: +document.getElementById("image").value, modes,
                quant: {calib: document.getElementById("calib").value, calib_n: +document.getElementById("calib-n").value,
                        activations: document.getElementById("activations").value}};
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
  pics.replaceChildren(...r.modes.filter(m => m in r.detections).map(m => el("figure", {}, el("figcaption", {}, `${m.toUpperCase()}: ${(r.detections[m] || []).length} detections`),
    el("img", {src: `/api/jobs/${job.id}/files/detections-${m}.png`, id: `det-${m}`, alt: m}))));
  const dl = document.getElementById("downloads");
  dl.replaceChildren("Download: ",
    el("a", {href: `/api/jobs/${job.id}/files/${r.report}`, id: "download-report"}, "report (HTML, kept in your files)"), " · ",
    el("a", {href: `/api/jobs/${job.id}/files/${r.zip}`, id: "download-zip"}, "everything (zip)"), " · ",
    el("a", {href: `/api/jobs/${job.id}/files/layers.csv`, id: "download-csv"}, "CSV"), " · ",
    el("a", {href: `/api/jobs/${job.id}/files/summary.json`, id: "download-json"}, "JSON"));
  document.getElementById("checks").replaceChildren(...(r.checks.length ? ["Checks: ", ...r.checks.map(c =>
    el("span", {class: c.passed ? "pass" : "fail"}, `${c.name}: ${c.passed ? "pass" : "FAIL"} (${fmt(c.value)}) `))] : []));
  if (r.qnet && r.kept[r.qnet]) dl.append(" · calibrated model kept as ",
    el("a", {href: `/step?model=${r.kept[r.qnet].id}`, id: "step-link"}, r.kept[r.qnet].name), " (open in STEP)");
  const cols = ["index", "type", "shape"];
  for (const m of r.modes) if (m !== "float") cols.push(`${m}_sqnr_db`, `${m}_max_abs`, `${m}_cosine`);
  if (r.modes.includes("int")) cols.push("int_saturated_pct");
  fillTable(document.getElementById("metrics"), r.layers, r.layers.length ? cols.filter(c => c in r.layers[0]) : cols);
  document.getElementById("results").hidden = false;
}
