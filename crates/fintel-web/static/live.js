// fintel dashboard: live updates without reloading the page.
// Every few seconds the page is fetched again and each element marked data-live is replaced by
// its fresh copy (matched by id), so scrolling and a half-typed filter are kept. Without
// JavaScript the page refreshes itself instead (a meta refresh inside <noscript>).
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (!seconds || !document.querySelector("[data-live]") || !window.fetch || !window.DOMParser) {
    return;
  }
  function update() {
    if (document.hidden) {
      setTimeout(update, seconds * 1000);
      return;
    }
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var parts = document.querySelectorAll("[data-live]");
        for (var i = 0; i < parts.length; i++) {
          var id = parts[i].id;
          var next = id && fresh.getElementById(id);
          if (next) { parts[i].replaceWith(document.importNode(next, true)); }
        }
        var stamp = document.getElementById("updated");
        if (stamp) { stamp.textContent = "updated " + new Date().toLocaleTimeString(); }
      })
      .catch(function () { /* the server is gone or restarting: try again later */ })
      .then(function () { setTimeout(update, seconds * 1000); });
  }
  setTimeout(update, seconds * 1000);
})();
