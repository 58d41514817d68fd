// After django-otp-webauthn's registration script stored a passkey, go where the server
// says: the next page of a login that the passkey completed, or the passkey list again.
document.addEventListener("otp_webauthn.register_complete", (event) => {
  const url = event.detail && event.detail.response && event.detail.response.redirect_url;
  if (url) {
    window.location.assign(url);
  }
});
