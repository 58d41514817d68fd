// The rollout add page's preview of the reach: posts the form (as it is) to the preview URL
// when the image or a target changes, or on "Show reach", and fills the table with the
// devices reached per group and type. Nothing is saved: the preview only counts. Without
// JavaScript the table is filled whenever the form comes back from the server.
(function () {
  var box = document.getElementById("rollout-preview");
  var form = box && box.closest("form");
  if (!form || !window.fetch || !window.FormData) {
    return;
  }
  var message = box.querySelector(".rollout-preview-message");
  var table = box.querySelector(".rollout-preview-table");
  var body = table.querySelector("tbody");
  var button = document.getElementById("rollout-preview-button");
  var watched = ["image", "target_groups", "target_types", "target_versions", "target_devices"];
  var timer = null;
  var asked = 0;

  function cell(text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) {
      td.className = className;
    }
    return td;
  }

  function show(answer) {
    body.textContent = "";
    if (answer.errors) {
      var texts = [];
      Object.keys(answer.errors).forEach(function (name) {
        texts.push(answer.errors[name].join(" "));
      });
      message.textContent = texts.join(" ");
      table.hidden = true;
      return;
    }
    answer.rows.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.appendChild(cell(row.group));
      tr.appendChild(cell(row.type));
      tr.appendChild(cell(String(row.devices), "devices"));
      body.appendChild(tr);
    });
    message.textContent = answer.total + (answer.total === 1 ? " device reached." : " devices reached.");
    table.hidden = answer.rows.length === 0;
  }

  function preview() {
    var mine = ++asked;
    message.textContent = "Counting…";
    fetch(box.dataset.url, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    })
      .then(function (response) {
        return response.json();
      })
      .then(function (answer) {
        if (mine === asked) {
          show(answer);
        }
      })
      .catch(function () {
        if (mine === asked) {
          message.textContent = "The reach could not be counted; try again.";
        }
      });
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(preview, 300);
  }

  watched.forEach(function (name) {
    var field = form.elements.namedItem(name);
    if (field) {
      field.addEventListener("change", later);
      if (field.tagName === "TEXTAREA") {
        field.addEventListener("input", later);
      }
    }
  });
  button.hidden = false;
  button.addEventListener("click", preview);
})();
