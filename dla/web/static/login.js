"use strict";
document.getElementById("auth-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const mode = ev.target.dataset.mode;
  const body = {username: document.getElementById("username").value, password: document.getElementById("password").value};
  try { await api("POST", mode === "signup" ? "/api/signup" : "/api/login", body); } catch (e) { return; }
  location.href = sameOrigin(new URLSearchParams(location.search).get("next"));
});
// ?next= as a path on this server, or "/": parsed as the browser will ("/\\evil", "/\t/evil" are "//evil").
function sameOrigin(next) {
  try {
    const u = new URL(next || "/", location.origin);
    return u.origin === location.origin ? u.pathname + u.search + u.hash : "/";
  } catch (e) { return "/"; }
}
