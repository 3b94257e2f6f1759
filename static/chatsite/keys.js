"use strict";
// The API keys page: a Copy button beside the new key's secret, which is shown only once; and
// one submit per form, as a second would replace the answer that holds the secret.
(function () {
  const secret = document.getElementById("new-key");
  if (secret) window.chatsiteCopy.addCopyButton(secret.parentElement, () => secret.textContent, "Copy key");
  const create = document.getElementById("create-key");
  create.addEventListener("submit", (event) => {
    if (create.dataset.sent) event.preventDefault();
    create.dataset.sent = "true";
    // A submit stopped before its answer (Esc, the Stop button) must not end the form.
    setTimeout(() => delete create.dataset.sent, 30000);
  });
  // Back to this page from the browser's cache: its form may be sent again.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) delete create.dataset.sent;
  });
})();
