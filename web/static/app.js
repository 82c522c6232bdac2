// Progressive enhancement only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // A refused form: move the focus to the first invalid field (or the summary), so that
  // keyboard and screen-reader users land on what to fix.
  var bad = document.querySelector("[aria-invalid=true]") || document.getElementById("problem");
  if (bad) { bad.focus(); return; }
  var result = document.getElementById("verify-result");
  if (result) { result.setAttribute("tabindex", "-1"); result.focus(); }
});

// A running job's page (#job[data-refresh]): read the page again every few seconds and show
// its new state in place, until the job has ended (the new #job has no data-refresh).
document.addEventListener("DOMContentLoaded", function () {
  var live = document.querySelector("#job[data-refresh]");
  if (!live) { return; }
  var every = parseInt(live.getAttribute("data-refresh"), 10) || 2000;
  function poll() {
    fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("job");
        if (!next) { return; }
        live.innerHTML = next.innerHTML;
        if (next.hasAttribute("data-refresh")) { setTimeout(poll, every); } else { live.removeAttribute("data-refresh"); }
      })
      .catch(function () { setTimeout(poll, every * 2); });
  }
  setTimeout(poll, every);
});
