"use strict";
// Logged out: the unsent drafts this tab kept (composer.js) go too, so whoever uses this
// browser next cannot read them. A lapsed session keeps them: logging in again restores them.
(function () {
  try {
    for (const key of Object.keys(sessionStorage)) {
      if (key.startsWith("chatsite-draft-")) sessionStorage.removeItem(key);
    }
  } catch (error) {
    // storage refused: nothing was kept
  }
})();
