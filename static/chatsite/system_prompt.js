"use strict";
// The conversation's system prompt: edited in place, saved with the API; the next replies are
// asked under it.
(function () {
  const form = document.getElementById("system-prompt-form");
  if (!form) return;
  const text = document.getElementById("system-prompt-text");
  const state = document.getElementById("system-prompt-state");
  const saved = document.getElementById("system-prompt-saved");
  const conversationId = document.getElementById("chat").dataset.conversationId;

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    saved.textContent = "Saving…";
    try {
      const url = `/api/conversations/${conversationId}/`;
      const conversation = await window.chatsiteApi("PATCH", url, { system_prompt: text.value });
      text.value = conversation.system_prompt;
      state.textContent = conversation.system_prompt ? ": set" : "";
      saved.textContent = "Saved. The next replies follow it.";
      // A changed conversation is the newest: first in the sidebar, as the server lists it.
      if (window.chatsiteSidebar) window.chatsiteSidebar.touch(conversationId, conversation.title);
    } catch (error) {
      saved.textContent = error.message;
    }
  });
  text.addEventListener("input", function () {
    saved.textContent = "";
  });
})();
