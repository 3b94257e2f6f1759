"use strict";
// The chat page's header: the conversation's title (from its first message, or renamed), its
// Delete button, and why it is not found. Errors go to the page's own handler (chat.js).
(function () {
  const TITLE_LENGTH = 80;
  const GONE = "This conversation was deleted, in another window or by an API client.";
  const api = window.chatsiteApi;
  const sidebar = window.chatsiteSidebar;

  // The same rule as the server's title_from(), so the page need not ask for it.
  function titleFrom(text) {
    const line = text.split(/\s+/).filter(Boolean).join(" ");
    return line.length <= TITLE_LENGTH ? line : line.slice(0, TITLE_LENGTH - 1).trimEnd() + "…";
  }

  // conversation: the page's {id, title}, kept up to date; failed(error) shows an API error.
  // Returns {titledBy(text)}: a first message titles an untitled conversation;
  // {retitle(title)}: the title as stored, when the page catches up; {whyNotFound(owner)}:
  // why it is not found.
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
        // The server lists a renamed conversation first now: so does the sidebar.
        if (sidebar) sidebar.touch(conversation.id, conversation.title);
      } catch (error) {
        failed(error);
      }
    }

    async function remove() {
      if (!window.confirm("Delete this conversation and all its messages?")) return;
      try {
        await api("DELETE", `/api/conversations/${conversation.id}/`);
        window.chatsiteDrafts.forget(conversation.id); // else the sidebar would list it
        // Back to the list it was in: a conversation a tool started is on the API tab.
        window.location.href = conversation.source === "api" ? "/?source=api" : "/";
      } catch (error) {
        failed(error);
      }
    }

    // Why the conversation is not found (404): {deleted, text}. Deleted elsewhere, unless
    // another account has logged in (in another tab) since, whose it is not.
    async function whyNotFound(owner) {
      try {
        const now = (await api("GET", "/api/usage/")).username;
        if (now !== owner) {
          const text = `${now} is logged in now, in another tab or window: this conversation is ${owner}'s. Log in as ${owner} again, then reload this page.`;
          return { deleted: false, text };
        }
      } catch (error) {
        // unreachable, or logged out meanwhile: deletion stays the likeliest reason
      }
      return { deleted: true, text: GONE };
    }

    document.getElementById("rename").addEventListener("click", rename);
    document.getElementById("delete").addEventListener("click", remove);
    return {
      titledBy(text) {
        if (!conversation.title) setTitle(titleFrom(text));
      },
      whyNotFound,
      // The title as stored now (another window's first message, or rename).
      retitle(title) {
        if (title === conversation.title) return;
        setTitle(title);
        if (sidebar) sidebar.rename(conversation.id, title);
      },
    };
  };
})();
