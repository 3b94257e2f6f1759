"use strict";
// The conversation sidebar: search it as the user types, open and close it on a phone, and
// keep it in step with the chat (newest first, current titles). The page lists the most
// recent conversations; older ones come from the API, a page at a time or as search finds them.
(function () {
  const list = document.getElementById("conversation-list");
  const search = document.getElementById("conversation-search");
  const noMatch = document.getElementById("no-match");
  const older = document.getElementById("older-conversations");
  const layout = document.querySelector(".layout");
  const toggle = document.getElementById("sidebar-toggle");
  if (!list) return;

  function items() {
    return list.querySelectorAll("li[data-conversation-id]");
  }

  // The server's answer to the words typed: it also matches what was said in a conversation
  // (failed: it could not be asked, so only the titles were searched).
  let found = { needle: "", ids: new Set(), failed: false };
  const NO_MATCH = noMatch ? noMatch.textContent : "";
  const TITLES_ONLY = "No title matches, and the messages could not be searched: check the connection.";

  function filter() {
    const needle = search.value.trim().toLowerCase();
    const answered = found.needle === needle;
    const saidThere = answered ? found.ids : new Set();
    let shown = 0;
    items().forEach(function (item) {
      const matches = item.textContent.toLowerCase().includes(needle) ||
        saidThere.has(item.dataset.conversationId);
      item.hidden = needle !== "" && !matches;
      if (!item.hidden) shown += 1;
    });
    noMatch.hidden = needle === "" || shown > 0;
    noMatch.textContent = answered && found.failed ? TITLES_ONLY : NO_MATCH;
  }

  function find(conversationId) {
    return Array.from(items()).find((item) => item.dataset.conversationId === conversationId);
  }

  // The title in full in a tooltip too: a long one is cut short (an ellipsis) in the list.
  function showTitle(link, title) {
    link.textContent = link.title = title || "New chat"; // text: titles are untrusted
  }

  function rename(conversationId, title) {
    const item = find(conversationId);
    if (item) showTitle(item.querySelector("a"), title);
    filter();
  }

  // Where the API's conversation goes: newest first, among those already listed.
  function add(conversation) {
    if (find(conversation.id)) return;
    const item = document.createElement("li");
    item.dataset.conversationId = conversation.id;
    item.dataset.updated = conversation.updated_at;
    const link = document.createElement("a");
    link.href = "/c/" + conversation.id + "/";
    showTitle(link, conversation.title);
    item.append(link);
    const placeholder = list.querySelector("li.empty:not(#no-match)"); // "No conversations yet."
    if (placeholder) placeholder.remove();
    const when = Date.parse(conversation.updated_at);
    const next = Array.from(items()).find((other) => Date.parse(other.dataset.updated) < when);
    list.insertBefore(item, next || noMatch);
  }

  function fetchConversations(query) {
    const params = new URLSearchParams(
      Object.assign({ source: list.dataset.source, page_size: list.dataset.pageSize, started: "true" }, query)
    );
    return window.chatsiteApi("GET", "/api/conversations/?" + params);
  }

  let olderPage = 2; // the page itself shows the first
  async function showOlder() {
    older.disabled = true;
    try {
      const page = await fetchConversations({ page: olderPage });
      page.results.forEach(add);
      olderPage += 1;
      older.hidden = !page.next;
      older.textContent = "Show older conversations";
    } catch (error) {
      older.textContent = "Could not load older conversations. Try again";
    } finally {
      older.disabled = false;
      filter();
    }
  }

  // Titles are filtered as the user types; once they pause, the server is asked too: it
  // searches messages as well as titles, and conversations not listed yet.
  let pause = null;
  function searchServer() {
    clearTimeout(pause);
    const needle = search.value.trim();
    if (needle === "") return;
    pause = setTimeout(async function () {
      let page;
      try {
        page = await fetchConversations({ q: needle });
      } catch (error) {
        page = null; // the listed titles are still filtered
      }
      if (search.value.trim() !== needle) return; // typed on meanwhile: a newer search comes
      const results = page ? page.results : [];
      results.forEach(add);
      found = { needle: needle.toLowerCase(), ids: new Set(results.map((c) => c.id)), failed: !page };
      filter();
    }, 300);
  }

  // A chat with an unsent draft in this tab stays within reach, even a new chat left empty,
  // which the page does not list. The API says it is still there, and its title; a draft
  // whose chat is gone is forgotten. Another account's drafts (a session that lapsed, then
  // someone else logged in) are left alone: only their owner's pages show them.
  async function listDrafted() {
    for (const id of window.chatsiteDrafts.keptBy(list.dataset.username)) {
      if (find(id)) continue;
      let conversation;
      try {
        conversation = await window.chatsiteApi("GET", `/api/conversations/${id}/`);
      } catch (error) {
        if (error.status === 404) window.chatsiteDrafts.forget(id);
        continue;
      }
      if (conversation.source === list.dataset.source) add(conversation);
    }
    filter();
  }

  // A conversation that just got a message is now the newest.
  function touch(conversationId, title) {
    const item = find(conversationId);
    if (!item) return;
    item.dataset.updated = new Date().toISOString();
    list.prepend(item);
    rename(conversationId, title);
  }

  listDrafted();
  search.addEventListener("input", filter);
  search.addEventListener("input", searchServer);
  if (older) older.addEventListener("click", showOlder);
  search.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      search.value = "";
      filter();
    }
  });
  if (toggle && layout) {
    toggle.addEventListener("click", function () {
      const open = layout.classList.toggle("sidebar-open");
      toggle.setAttribute("aria-expanded", String(open));
    });
  }

  window.chatsiteSidebar = { touch, rename };
})();
