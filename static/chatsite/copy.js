"use strict";
// Copy buttons: a reply, a code block, a new API key's secret.
(function () {
  // The Clipboard API needs a secure context; a LAN address over plain HTTP has none.
  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    if (!copied) throw new Error("copy refused");
  }

  function addCopyButton(target, getText, label, className) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = className || "copy small";
    button.textContent = label;
    button.addEventListener("click", async function () {
      try {
        await copyText(getText());
        button.textContent = "Copied";
      } catch (error) {
        button.textContent = "Copy failed";
      }
      setTimeout(function () { button.textContent = label; }, 1500);
    });
    target.appendChild(button);
    return button;
  }

  window.chatsiteCopy = { addCopyButton };
})();
