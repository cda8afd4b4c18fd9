"use strict";
let current = null;
fillPickers();
const tbody = document.querySelector("#overrides tbody");
document.getElementById("add-override").addEventListener("click", () => {
  const row = document.getElementById("override-row").content.firstElementChild.cloneNode(true);
  row.querySelector(".ov-remove").addEventListener("click", () => row.remove());
  tbody.append(row);
});
const list = s => s.split(",").map(x => x.trim()).filter(Boolean);
document.getElementById("quant-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const overrides = [...tbody.querySelectorAll("tr")].map(tr => ({
    layers: list(tr.querySelector(".ov-layers").value).map(Number), types: list(tr.querySelector(".ov-types").value),
    activations: tr.querySelector(".ov-act").value || null, weights: tr.querySelector(".ov-w").value || null}));
  const w = document.getElementById("weights").value, im = document.getElementById("image").value;
  const body = {model_id: +document.getElementById("model").value, weights_id: w ? +w : null, image_id: im ? +im : null,
                output: document.getElementById("output").value || null, darknet: document.getElementById("darknet").value,
                quant: {activations: document.getElementById("activations").value, weights: document.getElementById("weight-alg").value,
                        granularity: document.getElementById("granularity").value, ...calibOptions(ev.target), overrides}};
  const job = await api("POST", "/api/jobs/quantize", body);
  current = job.id;
  document.getElementById("cancel").hidden = false;
  const done = await followJob(job.id, jobUi);
  document.getElementById("cancel").hidden = true;
  if (done.status !== "done") return;
  const r = done.result, kept = r.kept[r.qnet];
  document.getElementById("saved").replaceChildren("Saved as ", el("a", {href: `/step?model=${kept.id}`}, kept.name), " in your files.");
  fillTable(document.getElementById("sqnr"), r.layers);
  document.getElementById("results").hidden = false;
});
document.getElementById("cancel").addEventListener("click", () => current && api("POST", `/api/jobs/${current}/cancel`));
