"use strict";
// The chat page's header: the conversation's title (from its first message, or renamed) and
// its Delete button. Errors go to the page's own handler (chat.js).
(function () {
  const TITLE_LENGTH = 80;
  const api = window.chatsiteApi;
  const sidebar = window.chatsiteSidebar;

  // The same rule as the server's title_from(), so the page need not ask for it.
  function titleFrom(text) {
    const line = text.split(/\s+/).filter(Boolean).join(" ");
    return line.length <= TITLE_LENGTH ? line : line.slice(0, TITLE_LENGTH - 1).trimEnd() + "…";
  }

  // conversation: the page's {id, title}, kept up to date; failed(error) shows an API error.
  // Returns {titledBy(text)}: a first message titles an untitled conversation; and
  // {retitle(title)}: the title as stored, when the page catches up.
  window.chatsiteChatHeader = function (conversation, failed) {
    function setTitle(title) {
      conversation.title = title;
      document.getElementById("chat-title").textContent = title || "New chat";
      document.title = `${title || "New chat"} · chatsite`;
    }

    async function rename() {
      const title = window.prompt("New title", conversation.title);
      if (title === null) return;
      try {
        setTitle((await api("PATCH", `/api/conversations/${conversation.id}/`, { title })).title);
        if (sidebar) sidebar.rename(conversation.id, conversation.title);
      } catch (error) {
        failed(error);
      }
    }

    async function remove() {
      if (!window.confirm("Delete this conversation and all its messages?")) return;
      try {
        await api("DELETE", `/api/conversations/${conversation.id}/`);
        window.location.href = "/";
      } catch (error) {
        failed(error);
      }
    }

    document.getElementById("rename").addEventListener("click", rename);
    document.getElementById("delete").addEventListener("click", remove);
    return {
      titledBy(text) {
        if (!conversation.title) setTitle(titleFrom(text));
      },
      // The title as stored now (another window's first message, or rename).
      retitle(title) {
        if (title === conversation.title) return;
        setTitle(title);
        if (sidebar) sidebar.rename(conversation.id, title);
      },
    };
  };
})();
