// Refreshes an element from the URL in its data-refresh attribute every
// data-interval milliseconds; the page reads the same without it.
(function () {
  "use strict";
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var every = parseInt(el.getAttribute("data-interval"), 10) || 5000;
    setInterval(function () {
      if (document.hidden) { return; }
      fetch(el.getAttribute("data-refresh"), { credentials: "same-origin", redirect: "error" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { el.innerHTML = html; })
        .catch(function () {});
    }, every);
  });
})();
