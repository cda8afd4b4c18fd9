"use strict";
document.getElementById("auth-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const mode = ev.target.dataset.mode;
  const body = {username: document.getElementById("username").value, password: document.getElementById("password").value};
  try { await api("POST", mode === "signup" ? "/api/signup" : "/api/login", body); } catch (e) { return; }
  const next = new URLSearchParams(location.search).get("next");
  location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
});
