// flashauth dev demo: plain JS against flashauth's own API on this origin.
// Tokens stay in the `tokens` object below: never in storage, never logged,
// never shown whole.
"use strict";

(() => {
  const redirectURI = document.body.dataset.redirectUri;
  const stateKey = "flashauth-demo-state"; // the pending sign-in's state (no token)
  const raceSize = 8;

  let tokens = null; // set once signed in

  const $ = (id) => document.getElementById(id);

  // short shows the first four characters of a token, never more.
  const short = (tok) => (tok ? tok.slice(0, 4) + "…" : "—");

  function when(ms, unknown) {
    if (ms === undefined || ms === null) return unknown || "unknown";
    if (ms === 0) return "never";
    const mins = Math.round((ms - Date.now()) / 60000);
    const abs = Math.abs(mins);
    let rel;
    if (abs < 60) rel = abs + " min";
    else if (abs < 48 * 60) rel = Math.round(abs / 60) + " h";
    else rel = Math.round(abs / 1440) + " days";
    if (mins === 0) rel = "just now";
    else rel = mins > 0 ? "in " + rel : rel + " ago";
    return new Date(ms).toLocaleString() + " (" + rel + ")";
  }

  function log(msg, ok) {
    const li = document.createElement("li");
    li.textContent = new Date().toLocaleTimeString() + "  " + msg;
    if (ok === false) li.className = "err";
    $("log").prepend(li);
  }

  function setStatus(msg) {
    $("status").textContent = msg;
  }

  // api calls flashauth and returns the parsed success body, or throws an
  // Error carrying the contract's error_code and message (which never hold
  // a token).
  async function api(method, path, body, withBearer) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (withBearer && tokens) headers.Authorization = "Bearer " + tokens.access;
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    let data = {};
    try {
      data = await res.json();
    } catch (e) {
      // not JSON; reported below by status
    }
    if (!res.ok || data.success !== true) {
      const err = new Error((data.error_code || "HTTP " + res.status) + (data.message ? ": " + data.message : ""));
      err.code = data.error_code;
      throw err;
    }
    return data;
  }

  // jwtExpiry reads the exp claim of a JWT (milliseconds), 0 if unreadable.
  function jwtExpiry(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part)).exp * 1000;
    } catch (e) {
      return 0;
    }
  }

  function render() {
    $("signed-out").hidden = tokens !== null;
    $("signed-in").hidden = tokens === null;
    if (!tokens) return;
    $("user").textContent = tokens.user.name + " <" + tokens.user.email + ">";
    const rows = [
      ["tok-github-access", tokens.githubAccess, when(tokens.githubAccessExpiresAt)],
      ["tok-github-refresh", tokens.githubRefresh, when(tokens.githubRefreshExpiresAt, "unknown until the first refresh")],
      ["tok-access", tokens.access, when(tokens.accessExpiresAt)],
      ["tok-session", tokens.sessionRefresh, when(tokens.sessionExpiresAt)],
    ];
    for (const [id, value, expires] of rows) {
      $(id).querySelector(".value").textContent = short(value);
      $(id).querySelector(".expires").textContent = expires;
    }
  }

  function signedOut(msg) {
    tokens = null;
    render();
    setStatus(msg);
    const body = $("sessions").querySelector("tbody");
    body.replaceChildren();
  }

  // run wraps a button's action: one at a time, errors go to the log.
  async function run(button, action) {
    const buttons = document.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      await action();
    } catch (e) {
      log(e.message, false);
      setStatus("Failed: " + e.message);
      if (e.code === "INVALID_REFRESH_TOKEN" || e.code === "REFRESH_TOKEN_REUSED") {
        signedOut("Signed out: " + e.message);
      }
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  async function startSignIn() {
    const q = new URLSearchParams({ redirect_uri: redirectURI });
    const data = await api("GET", "/auth/github/authorize?" + q.toString());
    sessionStorage.setItem(stateKey, data.state);
    setStatus("Redirecting to the GitHub emulator…");
    location.assign(data.url);
  }

  async function finishSignIn(params) {
    history.replaceState(null, "", "/"); // the code leaves the address bar
    const want = sessionStorage.getItem(stateKey);
    sessionStorage.removeItem(stateKey);
    if (params.get("error")) {
      throw new Error("GitHub refused the sign-in: " + (params.get("error_description") || params.get("error")));
    }
    if (!want || params.get("state") !== want) {
      throw new Error("this sign-in was not started from this page (state mismatch)");
    }
    setStatus("Signing in…");
    const data = await api("POST", "/auth/github", {
      code: params.get("code"),
      state: params.get("state"),
      redirect_uri: redirectURI,
      deviceInfo: { name: "flashauth dev demo" },
    });
    const a = data.authState;
    tokens = {
      user: a.user,
      githubAccess: a.accessToken,
      githubAccessExpiresAt: a.expiresAt,
      githubRefresh: a.refreshToken,
      githubRefreshExpiresAt: undefined,
      access: a.token,
      accessExpiresAt: jwtExpiry(a.token),
      sessionRefresh: a.sessionRefreshToken,
      sessionExpiresAt: a.sessionExpiresAt,
      sessionId: a.tokenId,
    };
    render();
    setStatus("Signed in as " + a.user.email);
    log("signed in as " + a.user.email + ", session " + a.tokenId);
    await loadSessions();
  }

  function adoptGitHub(d) {
    tokens.githubAccess = d.accessToken;
    tokens.githubAccessExpiresAt = d.expiresAt;
    tokens.githubRefresh = d.refreshToken;
    tokens.githubRefreshExpiresAt = d.refreshTokenExpiresAt;
  }

  async function refreshGitHub() {
    const before = tokens.githubAccess;
    const d = await api("POST", "/auth/github/refresh", { refresh_token: tokens.githubRefresh }, true);
    adoptGitHub(d);
    render();
    const msg = "GitHub token refreshed: " + short(before) + " -> " + short(d.accessToken);
    setStatus(msg);
    log(msg);
  }

  async function refreshSession() {
    const d = await api("POST", "/user/refresh", { refresh_token: tokens.sessionRefresh });
    tokens.access = d.token;
    tokens.accessExpiresAt = d.expiresAt;
    tokens.sessionRefresh = d.refreshToken;
    if (d.sessionExpiresAt) tokens.sessionExpiresAt = d.sessionExpiresAt;
    tokens.sessionId = d.tokenId;
    render();
    setStatus("Session refreshed");
    log("flashauth session " + d.tokenId + " refreshed; new access token " + short(d.token));
    await loadSessions();
  }

  // race presents one GitHub refresh token raceSize times at once. flashauth
  // makes one refresh at GitHub and gives every caller the identical answer
  // (joining the call in flight or replaying its committed result).
  async function race() {
    const body = JSON.stringify({ refresh_token: tokens.githubRefresh });
    const results = await Promise.all(
      Array.from({ length: raceSize }, () =>
        fetch("/auth/github/refresh", {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: "Bearer " + tokens.access },
          body,
          cache: "no-store",
        }).then(
          async (res) => ({ ok: res.ok, status: res.status, text: await res.text() }),
          (err) => ({ ok: false, status: 0, text: String(err) })
        )
      )
    );
    const first = results.find((r) => r.ok);
    const identical = first ? results.filter((r) => r.ok && r.text === first.text).length : 0;
    const rotations = new Set(results.filter((r) => r.ok).map((r) => JSON.parse(r.text).accessToken)).size;
    const out = $("race-result");
    out.textContent = identical + "/" + raceSize + " identical, " + rotations + (rotations === 1 ? " rotation" : " rotations");
    out.className = identical === raceSize && rotations === 1 ? "" : "bad";
    log("race: " + out.textContent);
    for (const r of results.filter((r) => !first || r.text !== first.text)) {
      let code = "";
      try {
        code = JSON.parse(r.text).error_code || "a different answer";
      } catch (e) {
        code = "no JSON answer";
      }
      log("race: one caller got " + (r.status || "no answer") + " " + code, false);
    }
    if (first) {
      adoptGitHub(JSON.parse(first.text));
      render();
    }
    setStatus("Race done: " + out.textContent);
  }

  async function loadSessions() {
    const d = await api("GET", "/token", undefined, true);
    const body = $("sessions").querySelector("tbody");
    body.replaceChildren();
    for (const s of d.tokens) {
      const tr = document.createElement("tr");
      tr.dataset.id = s.id;
      if (s.current) tr.className = "current";
      const device = s.deviceInfo && s.deviceInfo.name ? s.deviceInfo.name : s.userAgent || "";
      for (const text of [s.id.slice(0, 8) + "…", when(s.createdAt), when(s.lastUsedAt), when(s.expiresAt), device]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      const td = document.createElement("td");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "revoke";
      b.textContent = "Revoke";
      b.addEventListener("click", () => run(b, () => revoke(s.id, s.current)));
      td.append(b);
      tr.append(td);
      body.append(tr);
    }
    $("sessions").dataset.count = String(d.tokens.length);
  }

  async function revoke(id, current) {
    await api("DELETE", "/token/" + encodeURIComponent(id), undefined, true);
    log("revoked session " + id);
    if (current) {
      signedOut("Signed out: this page's session was revoked");
      return;
    }
    setStatus("Revoked session " + id.slice(0, 8) + "…");
    await loadSessions();
  }

  async function signOut() {
    await api("POST", "/user/logout", { refresh_token: tokens.sessionRefresh });
    log("signed out");
    signedOut("Signed out");
  }

  $("signin").addEventListener("click", (e) => run(e.target, startSignIn));
  $("refresh-github").addEventListener("click", (e) => run(e.target, refreshGitHub));
  $("refresh-session").addEventListener("click", (e) => run(e.target, refreshSession));
  $("race").addEventListener("click", (e) => run(e.target, race));
  $("load-sessions").addEventListener("click", (e) => run(e.target, loadSessions));
  $("signout").addEventListener("click", (e) => run(e.target, signOut));

  const params = new URLSearchParams(location.search);
  if (params.has("code") || params.has("error")) {
    run(null, () => finishSignIn(params)).then(render); // a failure keeps its message
  } else {
    signedOut("Signed out");
  }
})();
