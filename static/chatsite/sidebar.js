"use strict";
// The conversation sidebar: filter by title as the user types, open and close it on a phone,
// and keep it in step with the chat (newest first, current titles).
(function () {
  const list = document.getElementById("conversation-list");
  const search = document.getElementById("conversation-search");
  const noMatch = document.getElementById("no-match");
  const layout = document.querySelector(".layout");
  const toggle = document.getElementById("sidebar-toggle");
  if (!list) return;

  function items() {
    return list.querySelectorAll("li[data-conversation-id]");
  }

  function filter() {
    const needle = search.value.trim().toLowerCase();
    let shown = 0;
    items().forEach(function (item) {
      item.hidden = needle !== "" && !item.textContent.toLowerCase().includes(needle);
      if (!item.hidden) shown += 1;
    });
    noMatch.hidden = needle === "" || shown > 0;
  }

  function find(conversationId) {
    return Array.from(items()).find((item) => item.dataset.conversationId === conversationId);
  }

  function rename(conversationId, title) {
    const item = find(conversationId);
    if (item) item.querySelector("a").textContent = title || "New chat";
    filter();
  }

  // A conversation that just got a message is now the newest.
  function touch(conversationId, title) {
    const item = find(conversationId);
    if (!item) return;
    list.prepend(item);
    rename(conversationId, title);
  }

  search.addEventListener("input", filter);
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
