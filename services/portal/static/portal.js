/* What JavaScript adds to pages that work without it: after htmx swaps a page in (links and
   forms are boosted), focus goes where a keyboard or screen-reader user needs it, as a full
   page load would put it: the error summary when a form came back with errors, else the
   page's content. Nothing here is needed to use the portal. */
(function () {
  "use strict";

  function settle() {
    var summary = document.getElementById("error-summary");
    var target = summary || document.getElementById("main");
    if (target) {
      target.focus({ preventScroll: !summary });
    }
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail && event.detail.boosted) {
      settle();
    }
  });

  // A page loaded with errors (no JavaScript needed for the rest): start at the summary.
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.getElementById("error-summary");
    if (summary) {
      summary.focus();
    }
  });
})();
