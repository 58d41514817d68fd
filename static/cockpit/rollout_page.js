// A rollout page refreshes its waves (counts per state, bars) while the rollout moves,
// without reloading the page: every few seconds it asks <id>/progress/ for the waves
// table and swaps it in. It stops when the rollout no longer moves (then a reload shows
// the new status and buttons) or when the page is hidden.
(function () {
  var page = document.getElementById("rollout-page");
  if (!page || !window.fetch || page.dataset.live !== "1") {
    return;
  }
  var waves = document.getElementById("rollout-waves");
  var seconds = parseInt(page.dataset.refreshSeconds, 10) || 5;

  function refresh() {
    if (document.hidden) {
      window.setTimeout(refresh, seconds * 1000);
      return;
    }
    fetch(page.dataset.progressUrl, { credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (answer) {
        if (!answer) {
          return;
        }
        waves.innerHTML = answer.html;
        if (answer.status !== document.getElementById("rollout-status-value").dataset.status) {
          document.getElementById("rollout-status-value").textContent = answer.status + " (reload for the new buttons)";
        }
        if (answer.live) {
          window.setTimeout(refresh, seconds * 1000);
        }
      })
      .catch(function () {
        window.setTimeout(refresh, seconds * 4000);
      });
  }

  window.setTimeout(refresh, seconds * 1000);
})();
