// Progress for evidence uploads. Without this script the form posts as any form does; with
// it, the same request is sent by XMLHttpRequest so that a <progress> can show how much has
// gone, and the browser then goes where the server's answer went (the measure's page).
"use strict";
document.querySelectorAll("form[data-progress]").forEach(function (form) {
  var bar = document.getElementById(form.dataset.progress);
  form.addEventListener("submit", function (ev) {
    if (!window.FormData || !bar) {
      return;
    }
    ev.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        bar.max = e.total;
        bar.value = e.loaded;
        bar.textContent = Math.round((100 * e.loaded) / e.total) + "%";
      }
    });
    xhr.addEventListener("load", function () {
      // The answer is the page to show: after a redirect, the measure; after a refusal, the
      // page saying why. It keeps what was sent, for whoever checks.
      var sent = bar.value + "/" + bar.max;
      document.open();
      document.write(xhr.responseText);
      document.close();
      document.documentElement.dataset.uploaded = sent;
      if (xhr.responseURL) {
        history.replaceState(null, "", xhr.responseURL);
      }
    });
    xhr.addEventListener("error", function () {
      bar.hidden = true;
      form.submit();
    });
    bar.hidden = false;
    form.querySelector("button[type=submit]").disabled = true;
    xhr.send(new FormData(form));
  });
});
