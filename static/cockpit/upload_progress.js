// Upload progress for the firmware image add page: sends the form with XMLHttpRequest and
// fills <div id="upload-progress"> as the bytes go. Without JavaScript (or without
// XMLHttpRequest upload events) the form posts as any other. The server's answer (the next
// page, form errors or 413) replaces the document, as a plain submit would.
(function () {
  var box = document.getElementById("upload-progress");
  var form = box && box.closest("form");
  if (!form || !window.FormData || !("upload" in new XMLHttpRequest())) {
    return;
  }
  var bar = box.querySelector("progress");
  var text = box.querySelector(".upload-progress-text");

  function show(answer, url) {
    if (url && url !== window.location.href) {
      window.history.replaceState(null, "", url);
    }
    document.open();
    document.write(answer);
    document.close();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = new FormData(form);
    if (event.submitter && event.submitter.name) {
      data.append(event.submitter.name, event.submitter.value);
    }
    var request = new XMLHttpRequest();
    request.open("POST", form.action || window.location.href);
    request.upload.addEventListener("progress", function (progress) {
      if (progress.lengthComputable) {
        var percent = Math.floor((progress.loaded / progress.total) * 100);
        bar.value = percent;
        text.textContent = percent + " % of " + Math.ceil(progress.total / 1048576) + " MiB sent";
      }
    });
    request.upload.addEventListener("load", function () {
      text.textContent = "Sent; the server is checking the image…";
    });
    request.addEventListener("load", function () {
      show(request.responseText, request.responseURL);
    });
    request.addEventListener("error", function () {
      box.hidden = false;
      text.textContent = "The upload failed (connection lost). Try again.";
      form.querySelectorAll("[type=submit]").forEach(function (button) { button.disabled = false; });
    });
    box.hidden = false;
    bar.value = 0;
    text.textContent = "Starting…";
    form.querySelectorAll("[type=submit]").forEach(function (button) { button.disabled = true; });
    request.send(data);
  });
})();
