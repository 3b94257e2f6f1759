"use strict";
// The API keys page: a Copy button beside the new key's secret, which is shown only once.
(function () {
  const secret = document.getElementById("new-key");
  if (secret) window.chatsiteCopy.addCopyButton(secret.parentElement, () => secret.textContent, "Copy key");
})();
