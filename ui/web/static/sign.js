// Personal signatures with passkeys. A decision form marked data-sign is not sent at the first
// press: the server words the decision as typed (the statement), the page shows it with its
// SHA-256, and only then does the person touch their passkey, which signs that hash. The
// passkey registration does the same with the statement that proves the new key is held.
// Without this script, or without a passkey, forms post as any form does.
"use strict";
(function () {
  function enc(buf) {
    var s = "";
    new Uint8Array(buf).forEach(function (b) { s += String.fromCharCode(b); });
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function dec(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  // statement asks the server for a statement and shows it in box.
  function statement(url, body, box) {
    return fetch(url, { method: "POST", body: body, credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) { throw new Error(j.message || r.statusText); }
        box.querySelector(".words").textContent = j.words;
        box.querySelector(".sha").textContent = j.sha256;
        box.hidden = false;
        return j;
      });
    });
  }
  // explain says a WebAuthn failure in the page's language, with what to do.
  function explain(e) {
    var m = (document.getElementById("passkey-messages") || { dataset: {} }).dataset;
    if (e && e.name === "SecurityError" && m.security) { return m.security; }
    if (e && (e.name === "NotAllowedError" || e.name === "AbortError") && m.notallowed) { return m.notallowed; }
    if (e && e.name === "NotSupportedError" && m.unsupported) { return m.unsupported; }
    return (e && e.message) || String(e);
  }
  function assert(st, ids) {
    return navigator.credentials.get({ publicKey: {
      challenge: dec(st.challenge), rpId: location.hostname, userVerification: "required", timeout: 120000,
      allowCredentials: ids.map(function (id) { return { type: "public-key", id: dec(id) }; }) } });
  }
  function signature(st, keyID, a) {
    return JSON.stringify({ kind: "webauthn", key: keyID, time: st.time, authenticator_data: enc(a.response.authenticatorData),
      client_data_json: enc(a.response.clientDataJSON), signature: enc(a.response.signature) });
  }

  document.querySelectorAll("form[data-sign]").forEach(function (form) {
    var keys = JSON.parse(form.dataset.passkeys || "[]");
    var sig = form.querySelector("input[name=signature]");
    var box = form.querySelector(".statement");
    var err = form.querySelector(".sign-error");
    var st = null;
    form.addEventListener("submit", function (ev) {
      if (!keys.length || !window.PublicKeyCredential || sig.value) { return; }
      ev.preventDefault();
      err.textContent = "";
      // A form with a file (the steps' CSV) is sent to the statement as it will be sent.
      var body = form.enctype === "multipart/form-data" ? new FormData(form) : new URLSearchParams(new FormData(form));
      statement(form.dataset.sign, body, box).then(function (j) {
        st = j;
        box.querySelector("button.sign").focus();
      }).catch(function (e) { err.textContent = e.message; });
    });
    // What was shown is what is signed: a change to the form after it needs a new statement.
    form.addEventListener("input", function () { st = null; box.hidden = true; });
    box.querySelector("button.sign").addEventListener("click", function () {
      if (!st) { return; }
      assert(st, keys.map(function (k) { return k.credential_id; })).then(function (a) {
        var id = enc(a.rawId);
        var k = keys.find(function (k) { return k.credential_id === id; });
        sig.value = signature(st, k ? k.key : "", a);
        form.submit();
      }).catch(function (e) { err.textContent = explain(e); });
    });
  });

  var reg = document.getElementById("passkey-form");
  if (reg) {
    var btn = document.getElementById("register-passkey");
    var rbox = reg.querySelector(".statement");
    var rerr = reg.querySelector(".sign-error");
    btn.addEventListener("click", function () {
      rerr.textContent = "";
      if (!window.PublicKeyCredential) { rerr.textContent = explain({ name: "NotSupportedError" }); return; }
      var user = JSON.parse(reg.dataset.user);
      var challenge = new Uint8Array(32);
      crypto.getRandomValues(challenge);
      navigator.credentials.create({ publicKey: {
        rp: { id: location.hostname, name: "takedown" },
        user: { id: new TextEncoder().encode(user.id), name: user.name, displayName: user.display },
        challenge: challenge, timeout: 120000, attestation: "none",
        pubKeyCredParams: [{ type: "public-key", alg: -7 }, { type: "public-key", alg: -8 }, { type: "public-key", alg: -257 }],
        authenticatorSelection: { userVerification: "required", residentKey: "discouraged" } } }).then(function (cred) {
        var spki = cred.response.getPublicKey();
        if (!spki) { throw new Error("this authenticator's key type is not supported"); }
        reg.elements.public_key.value = enc(spki);
        reg.elements.credential_id.value = enc(cred.rawId);
        return statement("/keys/statement", new URLSearchParams({ public_key: enc(spki) }), rbox).then(function (st) {
          return assert(st, [enc(cred.rawId)]).then(function (a) {
            reg.elements.proof.value = signature(st, "", a);
            reg.submit();
          });
        });
      }).catch(function (e) { rerr.textContent = explain(e); });
    });
  }
})();
