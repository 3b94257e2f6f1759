"use strict";
// The page logging out leads to: this tab's drafts go, and the other tabs are told (drafts.js).
window.chatsiteDrafts.loggedOut();
