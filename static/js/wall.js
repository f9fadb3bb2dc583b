/* The hall wallboard: fetch the page every minute and swap its figures in place, so the screen
   never flashes white and a network failure keeps the last figures on screen (with a note)
   instead of the browser's error page. Without JavaScript the <noscript> meta refresh reloads. */
(function () {
  "use strict";
  var screen = document.getElementById("wall-screen");
  if (!screen || !window.fetch || !window.DOMParser) { return; }
  var seconds = parseInt(screen.getAttribute("data-refresh"), 10) || 60;

  function stale(on) {
    var note = document.getElementById("wall-stale");
    if (note) { note.hidden = !on; }
  }

  function refresh() {
    fetch(window.location.href, { cache: "no-store", credentials: "omit" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("wall-screen");
        if (!next) { throw new Error("no board in the answer"); }
        screen.innerHTML = next.innerHTML;
        stale(false);
      })
      .catch(function () { stale(true); });
  }

  window.setInterval(refresh, seconds * 1000);
})();
