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
  };

  function clearAll() {
    drafts.cleared = true;
    try {
      for (const key of Object.keys(sessionStorage)) {
        if (key.startsWith(PREFIX)) sessionStorage.removeItem(key);
      }
    } catch (error) {
      // storage refused: nothing was kept
    }
  }

  if (channel) channel.addEventListener("message", clearAll);
  window.chatsiteDrafts = drafts;
})();
