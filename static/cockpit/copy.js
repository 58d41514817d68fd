// Copy buttons: <button type="button" data-copy="#some-id" hidden>. The button copies the
// text of the element it names (a list: one item a line) to the clipboard and says so
// beside it. Buttons stay hidden without JavaScript, where they could do nothing; the
// delegated listener also serves buttons inside messages. No library, nothing fetched.
(function () {
  function textOf(element) {
    var items = element.querySelectorAll("li");
    if (!items.length) {
      return element.textContent.trim();
    }
    return Array.prototype.map.call(items, function (item) {
      return item.textContent.trim();
    }).join("\n") + "\n";
  }

  // Outside a secure context (plain http to a host other than localhost) the Clipboard
  // API is absent; copying a selected, off-screen text area still works there.
  function copyBySelection(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    var copied = document.execCommand("copy");
    document.body.removeChild(area);
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return copyBySelection(text);
      });
    }
    return copyBySelection(text);
  }

  function report(button, message) {
    var status = button.nextElementSibling;
    if (!status || !status.classList.contains("cockpit-copy-status")) {
      status = document.createElement("span");
      status.className = "cockpit-copy-status";
      status.setAttribute("role", "status");
      button.insertAdjacentElement("afterend", status);
    }
    status.textContent = message;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    var source = button && document.querySelector(button.getAttribute("data-copy"));
    if (!source) {
      return;
    }
    copy(textOf(source)).then(
      function () { report(button, "Copied."); },
      function () { report(button, "Could not copy: select the text and copy it by hand."); }
    );
  });

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.hidden = false;
  });
})();
