// The support link carries its secret after "#": browsers never send that part to a
// server, so it stays out of access logs and Referer headers. Move it into the form
// (which POSTs it) and drop it from the address bar and history.
(function () {
  var field = document.getElementById("support-secret");
  var secret = window.location.hash.slice(1);
  if (field && secret && !field.value) {
    field.value = decodeURIComponent(secret);
  }
  if (secret) {
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
})();
