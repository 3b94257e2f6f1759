"use strict";
// The chat page: posts a message, then follows the reply's event stream with EventSource.
// What it holds (state) is drawn by chatsiteThread (thread.js).
// All model output goes through chatsiteRender (marked + DOMPurify); user text is plain text.
(function () {
  const { ACTIVE, announceEnd } = window.chatsiteMessages;
  const ENDED = ["complete", "stopped", "interrupted", "failed"]; // as stored
  const sidebar = window.chatsiteSidebar;
  const chat = document.getElementById("chat");
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("content");
  const modelSelect = document.getElementById("model");
  const stopButton = document.getElementById("stop");
  const sendButton = document.getElementById("send");
  const errorBox = document.getElementById("composer-error");
  const announcer = document.getElementById("announcer");
  const conversation = JSON.parse(document.getElementById("conversation-data").textContent);
  const models = JSON.parse(document.getElementById("models-data").textContent);

  // A followed reply's conversation deleted meanwhile: what the server's stop says.
  const DELETED_MID_REPLY = "The conversation was deleted while this reply was being written.";

  const state = {
    messages: conversation.messages,
    choosing: {}, // user message id -> {id}: the reply chosen here, until the server answers
    // The reply being streamed: {reply, stream, content, reasoning, received, reconnecting}
    live: null,
  };
  let sending = false; // a message or regeneration on its way: one at a time
  let gone = false; // the conversation is not found: deleted, or another account logged in
  // One client_id per draft text, so a retried send is not stored twice (nor an edit undone
  // back to it), and an edited draft is a message of its own (the server refuses the old id).
  let [draftId, draftText] = [null, null];
  let unsure = false; // a request's answer lost, and the conversation not read since
  // Messages added here, and catch-ups begun: a catch-up's older snapshot must not replace them.
  let changes = 0;

  const api = window.chatsiteApi;
  const { newUuid, fillModelPicker, draftStore, listenToKeys } = window.chatsiteComposer;
  const draft = draftStore(conversation, input, chat.dataset.username);
  const header = window.chatsiteChatHeader(conversation, failed);
  const thread = window.chatsiteThread(state, { list, input, models, showControls, regenerate, choose });
  const { render, renderLiveSoon, updateShown, shownItem } = thread;

  function showError(text) {
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }

  // An API call failed: a conversation not found (404) ends this page's chat.
  async function failed(error) {
    if (error.status !== 404) return showError(error.message);
    endChat();
    showNotFound(await header.whyNotFound(chat.dataset.username));
  }

  function endChat() {
    gone = true;
    input.disabled = true;
    showControls();
  }

  // Deleted: the draft has nowhere to go (its text stays in view, to copy). Another account
  // logged in meanwhile: it is kept for its owner's return.
  function showNotFound(why) {
    if (why.deleted) draft.forget();
    showError(why.text);
  }

  // The user message stored with this client_id (none looked for without one).
  const storedWith = (clientId) =>
    clientId ? state.messages.find((m) => m.role === "user" && m.client_id === clientId) : undefined;
  const runningReply = () => state.messages.find((m) => m.role === "assistant" && ACTIVE.includes(m.status));

  function showControls() {
    const focused = document.activeElement;
    stopButton.hidden = !state.live;
    sendButton.disabled = Boolean(state.live) || sending || gone;
    // A button that hides or turns off under the keyboard's focus hands it to the text box,
    // not to the page's start.
    if ((focused === stopButton && stopButton.hidden) || (focused === sendButton && sendButton.disabled)) {
      if (!input.disabled) input.focus();
    }
  }

  // A copy of a message read elsewhere (a reply's end from its stream, a catch-up's GET) may
  // predate what this page holds: a choice answered since (the later chosen_at stays), or the
  // reply's end (a reply never runs again).
  function newerOf(held, copy) {
    if (!held) return copy;
    const later = (a, b) => (!a || (b && Date.parse(b) > Date.parse(a)) ? b : a);
    const ended = ENDED.includes(held.status) && ACTIVE.includes(copy.status); // not "unfollowed"
    return { ...(ended ? held : copy), chosen_at: later(held.chosen_at, copy.chosen_at) };
  }

  function replaceMessage(updated) {
    state.messages = state.messages.map((m) => (m.id === updated.id ? newerOf(m, updated) : m));
  }

  function follow(reply) {
    if (state.live && state.live.reply.id === reply.id) return; // followed already (a catch-up's, a replay)
    const following = { reply, content: "", reasoning: "", received: false, reconnecting: false };
    state.live = following;
    // The reply as this page last saw it, when the stream cannot say how it ended.
    const soFar = (ended) =>
      following.received ? { ...reply, content: following.content, reasoning: following.reasoning, ...ended } : { ...reply, ...ended };
    following.stream = window.chatsiteStream.followReply(reply.stream_url, {
      onText(field, text) {
        following[field] += text;
        following.received = true;
        renderLiveSoon();
      },
      onConnection(ok) {
        following.reconnecting = !ok;
        renderLiveSoon();
      },
      onFinal: (message) => finish(message, following),
      onLoggedOut(text) {
        // The text so far stays in view; the reply itself goes on and is kept.
        finish(soFar({ status: "unfollowed" }), following);
        showError(text);
      },
      async onGone() {
        endChat();
        const why = await header.whyNotFound(chat.dataset.username);
        // Not deleted: another account's session cannot follow it; it goes on, and is kept.
        finish(soFar(why.deleted ? { status: "stopped", error: DELETED_MID_REPLY } : { status: "unfollowed" }), following);
        showNotFound(why);
      },
      onFailed: (data) => finish(data.message || { ...reply, status: "failed", error: data.error.message }, following),
      refresh: async () => {
        const data = await api("GET", `/api/conversations/${conversation.id}/`);
        return data.messages.find((m) => m.id === reply.id) || null;
      },
    }, Number(chat.dataset.streamSilenceMs) || 17000);
    render();
  }

  // A final reply (from the stream or from stop) replaces the live one; a stale answer about
  // an older reply never ends the current stream.
  function finish(message, following) {
    if (message) replaceMessage(message);
    const live = state.live;
    const current = live && (following === live || (message && message.id === live.reply.id));
    if (current) {
      live.stream.close();
      state.live = null;
      showError(""); // what went wrong meanwhile (a Stop that failed, a 409) is past
      // Said once, for screen readers: the list itself is redrawn too often to be announced.
      if (message) announceEnd(announcer, message);
    }
    // Only the reply that ended changes: updated in place, a selection in it stays.
    const item = current && message && shownItem(message);
    if (!item) return render();
    showControls();
    updateShown(item, message);
  }

  // A message already shown is not added twice: the answer to a draft sent again after a
  // reload is the first send's, replayed (its client_id was kept with the draft).
  function add(...added) {
    for (const message of added) {
      if (!state.messages.some((m) => m.id === message.id)) state.messages.push(message);
    }
    changes += 1;
  }

  // One POST at a time (a second Enter while the first is on its way does nothing). lostId:
  // the client_id of the message it sends, to look for if its answer is lost.
  async function posting(request, lostId = null) {
    if (sending || state.live || gone) return;
    sending = true;
    showError("");
    showControls();
    let refused = null;
    try {
      await request();
    } catch (error) {
      failed(error);
      refused = error.status;
    } finally {
      sending = false;
      showControls();
    }
    // A reply started in another window (409), or by this request before its answer was lost
    // (status 0): the conversation as stored shows it, and follows it.
    if (refused === 409) await catchUp();
    if (refused === 0) {
      unsure = true;
      await catchUp({ keepError: true, lostId });
    }
  }

  // A message stored: its draft goes (what was typed meanwhile stays), and it titles the chat.
  function sent(content) {
    header.titledBy(content);
    draftSent(content);
    if (sidebar) sidebar.touch(conversation.id, conversation.title);
  }

  function draftSent(content) {
    if (input.value === content) input.value = "";
    draftId = draftText = null;
    draft.keep(null);
  }

  function send() {
    const content = input.value;
    if (!content.trim()) return;
    if (content !== draftText) [draftId, draftText] = [newUuid(), content];
    const clientId = draftId;
    draft.keep(clientId);
    return posting(async () => {
      await choicesAnswered(); // the model is sent the replies chosen here
      const data = await api("POST", `/api/conversations/${conversation.id}/messages/`, {
        content,
        model: modelSelect.value,
        client_id: clientId,
      });
      add(data.user_message, data.assistant_message);
      sent(content);
      follow(data.assistant_message);
      window.scrollTo(0, document.body.scrollHeight); // the message sent, even if scrolled up
      if (unsure) catchUp(); // what the lost request stored comes before it
    }, clientId);
  }

  async function regenerate(reply) {
    await posting(async () => {
      await choicesAnswered();
      const data = await api("POST", `/api/messages/${reply.id}/regenerate/`, { model: modelSelect.value });
      add(data.assistant_message); // the newest, so the one shown
      if (sidebar) sidebar.touch(conversation.id, conversation.title); // the newest activity
      follow(data.assistant_message);
    });
    refocus(); // its button is gone with the redrawn reply
  }

  // Each reply chosen among its alternatives (the one the conversation goes on from), told to
  // the server one after another; a message or regeneration waits for them.
  let choicesSent = Promise.resolve();
  async function choicesAnswered() {
    let last;
    while (last !== choicesSent) await (last = choicesSent); // and any chosen while waiting
  }

  function choose(reply, settled) {
    choicesSent = choicesSent.then(async () => {
      try {
        const stored = await api("POST", `/api/messages/${reply.id}/choose/`);
        const held = state.messages.find((m) => m.id === stored.id); // a catch-up's, maybe
        if (held) held.chosen_at = stored.chosen_at;
        settled();
      } catch (error) {
        settled();
        failed(error);
      }
    });
  }

  // The conversation as stored now, following its running reply: another window (or an API
  // client) may have added to it since this page was drawn. The error shown stays when
  // keepError (a request whose answer was lost), unless the message sent (lostId) is found.
  async function catchUp({ keepError = false, lostId = null } = {}) {
    const since = ++changes;
    let redraw;
    try {
      const stored = await api("GET", `/api/conversations/${conversation.id}/`);
      if (changes !== since) return; // sent again, or caught up again, meanwhile: that is newer
      const held = new Map(state.messages.map((m) => [m.id, m]));
      const before = JSON.stringify(state.messages);
      state.messages = stored.messages.map((m) => newerOf(held.get(m.id), m));
      redraw = JSON.stringify(state.messages) !== before;
      unsure = false;
      header.retitle(stored.title);
      const lost = storedWith(lostId);
      if (lost) {
        sent(lost.content);
        showError("");
      }
    } catch (error) {
      if (error.status === 404) failed(error);
      return;
    }
    // Unchanged, the list stays as it is: a focused button or a selection in it with it.
    if (redraw) render();
    else showControls();
    const running = runningReply();
    if (running && !state.live) follow(running);
    if (!running && !keepError) showError(""); // it ended meanwhile: nothing is in the way any more
  }

  // Back to the text box when the button pressed is gone (focus fell to the page), not when
  // the person has moved on meanwhile (to the search box, say).
  function refocus() {
    const focused = document.activeElement;
    if (!input.disabled && (!focused || focused === document.body)) input.focus();
  }

  async function stop() {
    if (!state.live || stopButton.disabled) return; // one Stop on its way at a time
    stopButton.disabled = true;
    try {
      finish(await api("POST", `/api/messages/${state.live.reply.id}/stop/`));
    } catch (error) {
      failed(error); // a 404: deleted meanwhile, and its stream says so as it ends
    } finally {
      stopButton.disabled = false;
      refocus(); // the Stop button hides with the reply done
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  listenToKeys(input, { send, stop: () => state.live && stop() });
  input.addEventListener("input", () => draft.keep(input.value === draftText ? draftId : null));
  stopButton.addEventListener("click", stop);
  // Shown again (another tab or window was in front): what changed meanwhile elsewhere, a
  // message or a reply chosen, is drawn, so that what is sent next goes on from what is seen.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible" || gone || sending) return;
    catchUp({ keepError: true, lostId: draftId }); // a send whose answer was lost, maybe
  });

  fillModelPicker(modelSelect, models, state.messages, conversation);
  draftId = draft.restore();
  draftText = draftId && input.value;
  // Its message stored after all (the answer lost, then the page reloaded): sent, not a draft.
  const stored = storedWith(draftId);
  if (stored) draftSent(stored.content);
  render();
  // Reattach to a reply still being generated: the stream replays its text so far at once.
  const running = runningReply();
  if (running) follow(running);
  chat.dataset.ready = "true";
  input.focus();
})();
