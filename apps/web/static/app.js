// parity web: a real browser login, in plain JavaScript (no build step).
//
// Authorization code flow with PKCE (S256) against the issuer, as a public client:
//   1. "Log in": state, nonce and a PKCE verifier in sessionStorage, then navigate to
//      {issuer}/protocol/openid-connect/auth
//   2. back with ?code=&state=: check state (and iss when sent), strip the parameters
//      from the URL, POST the code + verifier to {issuer}/protocol/openid-connect/token
//      (CORS: the client's web origins), check the id token's nonce
//   3. POST {API_URL}/session with the access token as Bearer: the API verifies it
//      and sets its HttpOnly session cookie (credentials: "include")
//   4. GET {API_URL}/me with the cookie only, and show what it returned
//   "Log out": DELETE {API_URL}/session, then {issuer}/protocol/openid-connect/logout
//
// The access token lives in memory only; the id token is kept in sessionStorage
// (for id_token_hint at logout, and to resume the API session after a reload).
// Nothing is kept in local storage, and this script sets no cookie.
//
// DOM contract: body[data-state] = signed-out | signing-in | signed-in | error;
// #status one line of text (every failure is also written with console.error);
// #user = preferred_username; #api-data = the JSON of GET /me; #login, #logout.
"use strict";

(function () {
  var PENDING_KEY = "parity.login";      // {state, nonce, verifier} while at the issuer
  var ID_TOKEN_KEY = "parity.id_token";  // for id_token_hint at logout
  var OIDC_PARAMS = ["code", "state", "session_state", "iss", "error", "error_description", "error_uri"];

  function el(id) { return document.getElementById(id); }

  var cfg = {
    api: el("api-url").textContent.trim().replace(/\/+$/, ""),
    issuer: el("oidc-issuer").textContent.trim().replace(/\/+$/, ""),
    clientId: el("oidc-client-id").textContent.trim()
  };
  var oidc = cfg.issuer + "/protocol/openid-connect";
  var endpoints = { auth: oidc + "/auth", token: oidc + "/token", logout: oidc + "/logout" };
  var redirectUri = window.location.origin + "/";
  var accessToken = null;  // memory only

  // ---------------------------------------------------------------- page state
  function StepError(message) { this.message = message; }

  function step(message) { return new StepError(message); }

  function setState(state, text) {
    document.body.setAttribute("data-state", state);
    el("status").textContent = text;
    var canLogOut = state === "signed-in" || (state === "error" && !!sessionStorage.getItem(ID_TOKEN_KEY));
    el("login").hidden = state === "signed-in" || state === "signing-in";
    el("logout").hidden = !canLogOut;
  }

  function fail(text) {
    console.error(text);
    setState("error", text);
  }

  function run(fn, prefix) {
    Promise.resolve().then(fn).catch(function (err) {
      var text = err instanceof StepError ? err.message
        : "unexpected error: " + (err && err.message ? err.message : String(err));
      fail((prefix || "") + text);
    });
  }

  // ---------------------------------------------------------------- helpers
  function b64url(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function randomString() {  // 48 random bytes -> 64 base64url characters
    var bytes = new Uint8Array(48);
    window.crypto.getRandomValues(bytes);
    return b64url(bytes);
  }

  async function s256(text) {
    var digest = await window.crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    return b64url(new Uint8Array(digest));
  }

  function decodeJwt(token) {
    try {
      var part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      part += "===".slice((part.length + 3) % 4);
      var bin = atob(part);
      var bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      return null;
    }
  }

  function query(params) {  // spaces as %20, not "+"
    return new URLSearchParams(params).toString().replace(/\+/g, "%20");
  }

  async function readJson(resp) {
    try { return await resp.json(); } catch (e) { return null; }
  }

  function errorOf(data, resp) {
    if (data && data.error) return String(data.error);
    return resp.statusText || "(no error text)";
  }

  function stripOidcParams() {
    var u = new URL(window.location.href);
    OIDC_PARAMS.forEach(function (p) { u.searchParams.delete(p); });
    window.history.replaceState(null, "", u.pathname + u.search + u.hash);
  }

  async function apiFetch(path, init) {
    var url = cfg.api + path;
    var opts = { credentials: "include", cache: "no-store" };
    Object.keys(init || {}).forEach(function (k) { opts[k] = init[k]; });
    try {
      return await fetch(url, opts);
    } catch (e) {
      throw step("API call blocked by the browser (CORS?) for " + url);
    }
  }

  // ---------------------------------------------------------------- the flow
  async function login() {
    if (!window.crypto || !window.crypto.subtle) {
      throw step("PKCE needs crypto.subtle, which the browser offers only in a secure context: " +
                 "open " + redirectUri + " over https");
    }
    var pending = { state: randomString(), nonce: randomString(), verifier: randomString() };
    var challenge = await s256(pending.verifier);
    sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
    setState("signing-in", "signing in: redirecting to the identity provider");
    window.location.assign(endpoints.auth + "?" + query({
      client_id: cfg.clientId,
      redirect_uri: redirectUri,
      response_type: "code",
      scope: "openid profile email",
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: challenge,
      code_challenge_method: "S256"
    }));
  }

  async function completeLogin(params) {
    var raw = sessionStorage.getItem(PENDING_KEY);
    sessionStorage.removeItem(PENDING_KEY);  // one use
    stripOidcParams();  // the code never stays in the address bar or the history
    setState("signing-in", "signing in: checking the identity provider's answer");
    if (params.has("error")) {
      throw step("identity provider returned error=" + params.get("error") + ": " +
                 (params.get("error_description") || "(no description)"));
    }
    var pending = null;
    try { pending = JSON.parse(raw); } catch (e) { pending = null; }
    if (!pending || !pending.state) {
      throw step("login state missing: this tab did not start the login that returned here " +
                 "(sessionStorage has no state)");
    }
    if (params.get("state") !== pending.state) {
      throw step("state mismatch: the authorization response does not belong to this tab's login");
    }
    if (params.has("iss") && params.get("iss") !== cfg.issuer) {
      throw step("issuer mismatch: the authorization response names iss=" + params.get("iss") +
                 ", expected " + cfg.issuer);
    }
    setState("signing-in", "signing in: exchanging the code");
    var tokens = await exchange(params.get("code"), pending.verifier);
    var idClaims = tokens.id_token ? decodeJwt(tokens.id_token) : null;
    if (!idClaims) throw step("token exchange failed: no readable id_token in the response (scope openid?)");
    if (idClaims.nonce !== pending.nonce) throw step("nonce mismatch: the id token was not issued for this login");
    accessToken = tokens.access_token;
    sessionStorage.setItem(ID_TOKEN_KEY, tokens.id_token);
    el("user").textContent = idClaims.preferred_username || "";
    await openApiSession();
    await showMe(false);
  }

  async function exchange(code, verifier) {
    var resp;
    try {
      resp = await fetch(endpoints.token, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: query({
          grant_type: "authorization_code",
          client_id: cfg.clientId,
          code: code,
          redirect_uri: redirectUri,
          code_verifier: verifier
        }),
        cache: "no-store"
      });
    } catch (e) {
      throw step("token request blocked by the browser (CORS?) for " + endpoints.token);
    }
    var data = await readJson(resp);
    if (!resp.ok) {
      var why = data && data.error ? (data.error + " " + (data.error_description || "")).trim()
        : "HTTP " + resp.status;
      throw step("token exchange failed: " + why);
    }
    if (!data || !data.access_token) throw step("token exchange failed: no access_token in the response");
    return data;
  }

  async function openApiSession() {
    setState("signing-in", "signing in: opening the API session");
    var resp = await apiFetch("/session", {
      method: "POST",
      headers: { Authorization: "Bearer " + accessToken }
    });
    if (!resp.ok) {
      throw step("API refused the token: " + resp.status + " " + errorOf(await readJson(resp), resp));
    }
  }

  async function showMe(resuming) {
    setState("signing-in", resuming ? "signing in: resuming the API session" : "signing in: reading /me");
    var resp = await apiFetch("/me", { method: "GET" });
    var data = await readJson(resp);
    if (resp.status === 401 && resuming) {
      sessionStorage.removeItem(ID_TOKEN_KEY);
      el("user").textContent = "";
      el("api-data").textContent = "";
      setState("signed-out", "signed out (the API session has ended)");
      return;
    }
    if (resp.status === 401) {
      throw step("API did not get its session cookie back: GET " + cfg.api + "/me -> 401 " +
                 errorOf(data, resp) + " (cookie refused by the browser? check SESSION_COOKIE_SECURE, " +
                 "SESSION_COOKIE_SAMESITE, SESSION_COOKIE_DOMAIN)");
    }
    if (!resp.ok || !data) {
      throw step("API call failed: GET " + cfg.api + "/me -> " + resp.status + " " + errorOf(data, resp));
    }
    el("user").textContent = data.user || el("user").textContent;
    el("api-data").textContent = JSON.stringify(data, null, 2);
    setState("signed-in", "signed in");
  }

  async function logout() {
    el("status").textContent = "signing out: closing the API session";
    var resp = await apiFetch("/session", { method: "DELETE" });
    if (!resp.ok) {
      throw step("API answered " + resp.status + " " + errorOf(await readJson(resp), resp) +
                 " to DELETE " + cfg.api + "/session");
    }
    var idToken = sessionStorage.getItem(ID_TOKEN_KEY);
    sessionStorage.removeItem(ID_TOKEN_KEY);
    accessToken = null;
    var params = { client_id: cfg.clientId, post_logout_redirect_uri: redirectUri };
    if (idToken) params.id_token_hint = idToken;
    el("status").textContent = "signing out: redirecting to the identity provider";
    window.location.assign(endpoints.logout + "?" + query(params));
  }

  // ---------------------------------------------------------------- start
  el("login").addEventListener("click", function () { run(login); });
  el("logout").addEventListener("click", function () { run(logout, "logout failed: "); });

  var params = new URLSearchParams(window.location.search);
  if (params.has("code") || params.has("error")) {
    run(function () { return completeLogin(params); });
  } else if (sessionStorage.getItem(ID_TOKEN_KEY)) {
    run(function () { return showMe(true); });
  } else {
    setState("signed-out", "signed out");
  }
})();
