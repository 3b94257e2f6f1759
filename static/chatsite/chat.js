"use strict";
// The chat page: posts a message, then follows the reply's event stream with EventSource.
// All model output goes through chatsiteRender (marked + DOMPurify); user text is plain text.
(function () {
  const { ACTIVE, renderUserMessage, renderReply, updateReply } = window.chatsiteMessages;
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
  const TITLE_LENGTH = 80;
  const FINAL_WORDS = {
    complete: "The reply is complete.",
    stopped: "The reply was stopped.",
    interrupted: "The reply was interrupted.",
    failed: "The reply failed.",
  };

  let messages = conversation.messages;
  const chosen = {}; // user message id -> index of the alternative shown
  // The reply being streamed: {reply, stream, content, reasoning, received, reconnecting}
  let live = null;
  let draftId = null; // one client_id per draft, so a retried send is not stored twice

  const api = window.chatsiteApi;

  function showError(text) {
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }

  // crypto.randomUUID needs a secure context; getRandomValues works everywhere.
  function newUuid() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function modelLabel(id) {
    const model = models.find((m) => m.id === id);
    return model ? model.label : id;
  }

  const userMessages = () => messages.filter((m) => m.role === "user");
  const repliesTo = (userMessage) => messages.filter((m) => m.role === "assistant" && m.parent === userMessage.id);

  function replyView(userMessage, alternatives, index) {
    const reply = alternatives[index];
    const isLive = Boolean(live && live.reply.id === reply.id);
    const isLastTurn = userMessages().slice(-1)[0] === userMessage;
    return {
      reply,
      index,
      count: alternatives.length,
      live: isLive,
      // Until the stream replays it, a reopened reply shows its last saved text.
      content: isLive && live.received ? live.content : reply.content,
      reasoning: isLive && live.received ? live.reasoning : reply.reasoning,
      reconnecting: isLive && live.reconnecting,
      modelLabel,
      onChoose: (i) => {
        chosen[userMessage.id] = i;
        render();
        // Focus stays on the arrow pressed (on the other one at either end).
        const buttons = list.querySelectorAll(`[data-message-id="${alternatives[i].id}"] .alternatives button`);
        const pressed = buttons[i > index ? 1 : 0];
        (pressed && !pressed.disabled ? pressed : [...buttons].find((b) => !b.disabled) || input).focus();
      },
      onRegenerate: isLastTurn && !live ? () => regenerate(reply) : null,
    };
  }

  const shownItem = (reply) => list.querySelector(`[data-message-id="${reply.id}"]`);

  function showControls() {
    stopButton.hidden = !live;
    sendButton.disabled = Boolean(live);
  }

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
  }

  // Update a shown reply in place (the live one, or the one that just ended).
  function updateShown(item, reply) {
    const userMessage = messages.find((m) => m.id === reply.parent);
    const alternatives = repliesTo(userMessage);
    const follow = nearBottom();
    updateReply(item, replyView(userMessage, alternatives, alternatives.indexOf(reply)));
    if (follow) window.scrollTo(0, document.body.scrollHeight);
  }

  function render() {
    const follow = nearBottom();
    list.replaceChildren();
    for (const message of userMessages()) {
      list.appendChild(renderUserMessage(message));
      const alternatives = repliesTo(message);
      if (!alternatives.length) continue;
      const index = Math.min(chosen[message.id] ?? alternatives.length - 1, alternatives.length - 1);
      list.appendChild(renderReply(replyView(message, alternatives, index)));
    }
    showControls();
    if (follow) window.scrollTo(0, document.body.scrollHeight);
  }

  // Update only the live reply, in place, at most once per animation frame. When another
  // alternative is shown instead, there is nothing on screen to update.
  let frameQueued = false;
  function renderLiveSoon() {
    if (frameQueued) return;
    frameQueued = true;
    requestAnimationFrame(() => {
      frameQueued = false;
      const item = live && shownItem(live.reply);
      if (item) updateShown(item, live.reply);
    });
  }

  function replaceMessage(updated) {
    messages = messages.map((m) => (m.id === updated.id ? updated : m));
  }

  function follow(reply) {
    const state = { reply, content: "", reasoning: "", received: false, reconnecting: false };
    live = state;
    state.stream = window.chatsiteStream.followReply(reply.stream_url, {
      onText(field, text) {
        state[field] += text;
        state.received = true;
        renderLiveSoon();
      },
      onConnection(ok) {
        state.reconnecting = !ok;
        renderLiveSoon();
      },
      onFinal: (message) => finish(message, state),
      onLoggedOut(text) {
        // The text so far stays in view; the reply itself goes on and is kept.
        finish({ ...reply, content: state.content, reasoning: state.reasoning }, state);
        showError(text);
      },
      onFailed: (data) => finish(data.message || { ...reply, status: "failed", error: data.error.message }, state),
      refresh: async () => {
        const data = await api("GET", `/api/conversations/${conversation.id}/`);
        return data.messages.find((m) => m.id === reply.id) || null;
      },
    });
    render();
  }

  // A final reply (from the stream or from stop) replaces the live one; a stale answer about
  // an older reply never ends the current stream.
  function finish(message, state) {
    if (message) replaceMessage(message);
    const current = live && (state === live || (message && message.id === live.reply.id));
    if (current) {
      live.stream.close();
      live = null;
      // Said once, for screen readers: the list itself is redrawn too often to be announced.
      if (message && FINAL_WORDS[message.status]) announcer.textContent = FINAL_WORDS[message.status];
    }
    // Only the reply that ended changes: updated in place, a selection in it stays.
    const item = current && message && shownItem(message);
    if (!item) return render();
    showControls();
    updateShown(item, message);
  }

  async function send() {
    const content = input.value;
    if (!content.trim() || live) return;
    showError("");
    sendButton.disabled = true;
    draftId = draftId || newUuid();
    try {
      const data = await api("POST", `/api/conversations/${conversation.id}/messages/`, {
        content,
        model: modelSelect.value,
        client_id: draftId,
      });
      input.value = "";
      draftId = null;
      // The model was sent the newest reply to each earlier message: those are shown now.
      for (const id of Object.keys(chosen)) delete chosen[id];
      messages.push(data.user_message, data.assistant_message);
      if (!conversation.title) setTitle(titleFrom(content));
      if (sidebar) sidebar.touch(conversation.id, conversation.title);
      follow(data.assistant_message);
    } catch (error) {
      showError(error.message);
      sendButton.disabled = false;
    }
  }

  async function regenerate(reply) {
    showError("");
    try {
      const data = await api("POST", `/api/messages/${reply.id}/regenerate/`, { model: modelSelect.value });
      messages.push(data.assistant_message);
      delete chosen[data.user_message.id];
      follow(data.assistant_message);
    } catch (error) {
      showError(error.message);
    }
    input.focus(); // its button is gone with the redrawn reply
  }

  async function stop() {
    if (!live) return;
    stopButton.disabled = true;
    try {
      finish(await api("POST", `/api/messages/${live.reply.id}/stop/`));
    } catch (error) {
      showError(error.message);
    } finally {
      stopButton.disabled = false;
      input.focus(); // the Stop button hides with the reply done
    }
  }

  // The same rule as the server's title_from(), so the page need not ask for it.
  function titleFrom(text) {
    const line = text.split(/\s+/).filter(Boolean).join(" ");
    return line.length <= TITLE_LENGTH ? line : line.slice(0, TITLE_LENGTH - 1).trimEnd() + "…";
  }

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
      showError(error.message);
    }
  }

  async function remove() {
    if (!window.confirm("Delete this conversation and all its messages?")) return;
    try {
      await api("DELETE", `/api/conversations/${conversation.id}/`);
      window.location.href = "/";
    } catch (error) {
      showError(error.message);
    }
  }

  function fillModelPicker() {
    const lastReply = messages.filter((m) => m.role === "assistant").slice(-1)[0];
    const wanted = [lastReply && lastReply.model, conversation.model];
    const selected = wanted.find((id) => models.some((m) => m.id === id)) || (models.find((m) => m.is_default) || {}).id;
    for (const model of models) {
      const option = document.createElement("option");
      option.value = model.id;
      option.textContent = model.label;
      option.selected = model.id === selected;
      modelSelect.appendChild(option);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    } else if (event.key === "Escape" && live) {
      stop();
    }
  });
  input.addEventListener("input", () => { draftId = null; });
  stopButton.addEventListener("click", stop);
  document.getElementById("rename").addEventListener("click", rename);
  document.getElementById("delete").addEventListener("click", remove);

  fillModelPicker();
  render();
  // Reattach to a reply still being generated: the stream replays its text so far at once.
  const running = messages.find((m) => m.role === "assistant" && ACTIVE.includes(m.status));
  if (running) follow(running);
  chat.dataset.ready = "true";
  input.focus();
})();
