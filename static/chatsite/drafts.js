"use strict";
// The unsent drafts a tab keeps (composer.js) go when the user logs out: the tab that logs out
// clears its own (logged_out.js) and tells the others, each of which clears its own and keeps
// no more, so whoever uses this browser next cannot read them. Every page loads this, the
// login page and the admin's too. A lapsed session keeps them: logging in again restores them.
(function () {
  const PREFIX = "chatsite-draft-";
  const channel = "BroadcastChannel" in window ? new BroadcastChannel("chatsite-logout") : null;
  const drafts = {
    PREFIX,
    cleared: false, // by a logout: a page still open keeps no more drafts
    loggedOut() {
      clearAll();
      if (channel) channel.postMessage("logged out");
    },
    forget(conversationId) {
      try {
        sessionStorage.removeItem(PREFIX + conversationId);
      } catch (error) {
        // nothing was kept
      }
    },
    // The conversations holding a draft of `user`'s in this tab (composer.js keeps each
    // with its user): another account's are not theirs to show.
    keptBy(user) {
      return draftKeys()
        .filter((key) => {
          try {
            return JSON.parse(sessionStorage.getItem(key)).user === user;
          } catch (error) {
            return false; // not as the chat page keeps drafts
          }
        })
        .map((key) => key.slice(PREFIX.length));
    },
  };

  function draftKeys() {
    try {
      return Object.keys(sessionStorage).filter((key) => key.startsWith(PREFIX));
    } catch (error) {
      return []; // storage refused: nothing was kept
    }
  }

  function clearAll() {
    drafts.cleared = true;
    for (const key of draftKeys()) sessionStorage.removeItem(key);
  }

  if (channel) channel.addEventListener("message", clearAll);
  window.chatsiteDrafts = drafts;
})();
