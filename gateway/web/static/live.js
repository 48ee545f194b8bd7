// Live refresh: re-fetch this page every few seconds and swap in its live parts.
// Without JavaScript the page is complete as served; this only keeps it current.
(function () {
  "use strict";
  var live = document.querySelector("[data-refresh]");
  if (!live || !window.fetch || !window.DOMParser) { return; }
  var seconds = parseInt(live.getAttribute("data-refresh"), 10) || 5;
  var note = document.querySelector(".live-note");
  if (note) { note.hidden = false; }
  var busy = false;
  function refresh() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live": "1" } })
      .then(function (response) {
        // A redirect means the session ended: stop rather than swap in a login page.
        if (!response.ok || response.redirected) { throw new Error("stop"); }
        return response.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        // Every element marked data-live is swapped by its id; forms stay as they are.
        Array.prototype.forEach.call(document.querySelectorAll("[data-live]"), function (current) {
          var fresh = doc.getElementById(current.id);
          if (fresh) { current.replaceWith(document.importNode(fresh, true)); }
        });
      })
      .catch(function () { /* keep what is shown; try again on the next tick */ })
      .then(function () { busy = false; });
  }
  window.setInterval(refresh, seconds * 1000);
}());
