/* Live regions of the cockpit: elements marked data-live poll through htmx (hx-trigger
   "every Ns, cot:refresh"). A tab in the background does not ask (its polls are cancelled
   before they are sent), nor does a region whose fields someone is editing (a half-typed
   operation, ticked rows of a list), a tab coming back to the front asks at once, and a
   failed refresh says so in the region's .live-error instead of leaving old figures unexplained. */
(function () {
  "use strict";

  function liveRegion(element) {
    return element && element.closest ? element.closest("[data-live]") : null;
  }

  function changed(field) {
    if (field.type === "checkbox" || field.type === "radio") {
      return field.checked !== field.defaultChecked;
    }
    if (field.tagName === "SELECT") {
      return Array.from(field.options).some(function (option) { return option.selected !== option.defaultSelected; });
    }
    return field.value !== field.defaultValue;
  }

  // Someone is typing in, or has changed, a field of the region: a refresh would throw it away.
  function beingEdited(region) {
    const fields = region.querySelectorAll("input:not([type=hidden]), textarea, select");
    return Array.from(fields).some(function (field) { return field === document.activeElement || changed(field); });
  }

  function count(region, name) {
    region.dataset[name] = String(Number(region.dataset[name] || 0) + 1);
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    const region = liveRegion(event.target);
    if (!region || event.target !== region) {
      return;  // a form or link inside the region, not its refresh
    }
    if (document.visibilityState === "hidden") {
      event.preventDefault();
      count(region, "skippedWhileHidden");
    } else if (beingEdited(region)) {
      event.preventDefault();
      count(region, "skippedWhileEdited");
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

  // A list region (data-live-rows) keeps its rows, and with them the admin's handlers on
  // the checkboxes: the cells of each row are copied from the fresh page, matched by the
  // row's object id; a list that gained or lost rows says so instead of reshuffling.
  function rowsById(root) {
    const rows = new Map();
    root.querySelectorAll("#result_list tbody tr").forEach(function (row) {
      const box = row.querySelector("input.action-select");
      if (box) {
        rows.set(box.value, row);
      }
    });
    return rows;
  }

  function patchRows(region, html) {
    const fresh = new DOMParser().parseFromString(html, "text/html").getElementById(region.id);
    if (!fresh) {
      return;
    }
    const now = rowsById(region);
    const next = rowsById(fresh);
    next.forEach(function (row, id) {
      const shown = now.get(id);
      if (!shown) {
        return;
      }
      row.querySelectorAll("td[class^='field-'], th[class^='field-']").forEach(function (cell) {
        const target = shown.querySelector(cell.tagName + "." + cell.classList[0]);
        if (target && target.innerHTML !== cell.innerHTML) {
          target.innerHTML = cell.innerHTML;
        }
      });
    });
    const changed = now.size !== next.size || Array.from(next.keys()).some(function (id) { return !now.has(id); });
    const notice = region.querySelector(".live-changed");
    if (notice) {
      notice.hidden = !changed;
    }
    const time = fresh.querySelector(".live-status time");
    const shownTime = region.querySelector(".live-status time");
    if (time && shownTime) {
      shownTime.replaceWith(time);
    }
    showError({target: region}, false);
    count(region, "patched");
  }

  document.addEventListener("htmx:afterRequest", function (event) {
    const region = liveRegion(event.target);
    if (region && event.target === region && "liveRows" in region.dataset && event.detail.successful) {
      patchRows(region, event.detail.xhr.responseText);
    }
  });

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && window.htmx) {
      document.querySelectorAll("[data-live]").forEach(function (region) {
        window.htmx.trigger(region, "cot:refresh");
      });
    }
  });
})();
