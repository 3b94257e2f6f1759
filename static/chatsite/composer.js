"use strict";
// The chat page's composer, apart from sending (chat.js): the model picker, the draft kept
// for the tab's life, the ids that make a retried send safe, and its keys.
(function () {
  // crypto.randomUUID needs a secure context; getRandomValues works everywhere.
  function newUuid() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // The model offered first: the last reply's, else the conversation's, else the default.
  function fillModelPicker(select, models, messages, conversation) {
    const lastReply = messages.filter((m) => m.role === "assistant").slice(-1)[0];
    const wanted = [lastReply && lastReply.model, conversation.model];
    const selected = wanted.find((id) => models.some((m) => m.id === id)) || (models.find((m) => m.is_default) || {}).id;
    for (const model of models) {
      const option = document.createElement("option");
      option.value = model.id;
      option.textContent = model.label;
      option.selected = model.id === selected;
      select.appendChild(option);
    }
  }

  // The text being written is kept per conversation for the tab's life (sessionStorage): a
  // reload, another chat opened meanwhile, or logging in again after the session lapsed does
  // not lose it; logging out clears it (drafts.js). With it, the
  // client_id it was sent with: sent again after a reload (its answer lost), it is a repeat
  // the server recognises, not a second message. Storage refused (full, or disabled) leaves
  // the draft on the page only, as before. The chat's source and its user go with it: the
  // sidebar lists a chat with a draft (sidebar.js), even a new chat it would leave out.
  function draftStore(conversation, input, user) {
    const key = `${window.chatsiteDrafts.PREFIX}${conversation.id}`;
    return {
      keep(clientId) {
        if (window.chatsiteDrafts.cleared) return; // logged out in another tab
        const kept = { text: input.value, clientId, source: conversation.source, user };
        try {
          if (input.value) sessionStorage.setItem(key, JSON.stringify(kept));
          else sessionStorage.removeItem(key);
        } catch (error) {
          // not kept
        }
      },
      forget: () => window.chatsiteDrafts.forget(conversation.id),
      // A kept draft back in an empty box (or one the browser refilled with it); its
      // client_id, or null.
      restore() {
        try {
          const kept = JSON.parse(sessionStorage.getItem(key) || "null");
          if (kept && (!input.value || input.value === kept.text)) {
            input.value = kept.text;
            return kept.clientId || null;
          }
        } catch (error) {
          // nothing kept, or not as this page keeps it
        }
        return null;
      },
    };
  }

  // Where Escape belongs to something else: another text field (the search clears itself, the
  // system prompt editor), or a dialog or menu, which closes.
  const OWN_ESCAPE = [
    "input", "textarea", "select", "[contenteditable]",
    "dialog", "[role=dialog]", "[role=alertdialog]", "[role=menu]", "[role=menubar]", "[role=listbox]",
  ].join(", ");

  // Enter sends, Shift+Enter starts a new line. Escape anywhere on the page stops the reply
  // (stop() does nothing when none runs), unless it is another element's. A touch screen's
  // keyboard has no Shift+Enter: there Enter starts a new line and the Send button sends (or
  // Ctrl+Enter, or Cmd+Enter, on a tablet's keyboard, as anywhere).
  function listenToKeys(input, { send, stop }) {
    const touchScreen = window.matchMedia("(pointer: coarse)");
    const placeholder = input.placeholder;
    const describe = () => { input.placeholder = touchScreen.matches ? "Message" : placeholder; };
    describe();
    touchScreen.addEventListener("change", describe);
    // An input method's own Enter or Escape (isComposing; Safari's last one keyCode 229)
    // confirms or cancels the characters being composed: it neither sends nor stops.
    const composing = (event) => event.isComposing || event.keyCode === 229;
    input.addEventListener("keydown", (event) => {
      if (composing(event)) return;
      const sends = event.ctrlKey || event.metaKey || !(event.shiftKey || touchScreen.matches);
      if (event.key === "Enter" && sends) {
        event.preventDefault();
        if (!event.repeat) send(); // an Enter held down sends once
      }
    });
    // One listener for the whole page, the message box's Escape included: one stop per key.
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || event.defaultPrevented || composing(event)) return;
      const target = event.target instanceof Element ? event.target : null;
      if (target && target !== input && target.closest(OWN_ESCAPE)) return;
      if (document.querySelector("dialog[open]")) return; // an open dialog's, wherever focus is
      stop();
    });
  }

  window.chatsiteComposer = { newUuid, fillModelPicker, draftStore, listenToKeys };
})();
