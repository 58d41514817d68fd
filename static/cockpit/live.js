/* Live regions of the cockpit: elements marked data-live poll through htmx (hx-trigger
   "every Ns, cot:refresh"). A tab in the background does not ask (its polls are cancelled
   before they are sent), a tab coming back to the front asks at once, and a failed refresh
   says so in the region's .live-error instead of leaving old figures unexplained. */
(function () {
  "use strict";

  function liveRegion(element) {
    return element && element.closest ? element.closest("[data-live]") : null;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    const region = liveRegion(event.target);
    if (region && document.visibilityState === "hidden") {
      event.preventDefault();
      region.dataset.skippedWhileHidden = String(Number(region.dataset.skippedWhileHidden || 0) + 1);
    }
  });

  function showError(event, failed) {
    const region = liveRegion(event.target);
    const message = region && region.querySelector(".live-error");
    if (message) {
      message.hidden = !failed;
    }
  }

  document.addEventListener("htmx:responseError", function (event) { showError(event, true); });
  document.addEventListener("htmx:sendError", function (event) { showError(event, true); });

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && window.htmx) {
      document.querySelectorAll("[data-live]").forEach(function (region) {
        window.htmx.trigger(region, "cot:refresh");
      });
    }
  });
})();
