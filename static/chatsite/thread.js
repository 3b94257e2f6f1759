"use strict";
// The conversation drawn on the chat page: each user message with the reply chosen among its
// alternatives. The live reply is redrawn in place, at most once per animation frame.
(function () {
  const { renderUserMessage, renderReply, updateReply } = window.chatsiteMessages;

  // state: the page's {messages, live, choosing}, read at each drawing (chat.js changes it).
  // showControls() sets the page's buttons; regenerate(reply) asks for another reply;
  // choose(reply, settled) tells the server the reply chosen, then calls settled().
  // Returns {render, renderLiveSoon, updateShown, shownItem}.
  window.chatsiteThread = function (state, { list, input, models, showControls, regenerate, choose }) {
    function modelLabel(id) {
      const model = models.find((m) => m.id === id);
      return model ? model.label : id;
    }

    const userMessages = () => state.messages.filter((m) => m.role === "user");
    const repliesTo = (userMessage) =>
      state.messages.filter((m) => m.role === "assistant" && m.parent === userMessage.id);

    // The reply shown is the one its conversation goes on from: the one chosen last, by its
    // owner (the arrows, here or in another window) or by being made, as the server says; a
    // choice made here counts at once, until the server has answered it (state.choosing:
    // user message id -> {id} of the reply chosen last here).
    const lastChosen = (m) => Math.max(Date.parse(m.created_at), m.chosen_at ? Date.parse(m.chosen_at) : 0);
    function shownIndex(userMessage, alternatives) {
      const choice = state.choosing[userMessage.id];
      const choosing = choice ? alternatives.findIndex((m) => m.id === choice.id) : -1;
      if (choosing >= 0) return choosing;
      let shown = 0;
      alternatives.forEach((m, i) => {
        if (lastChosen(m) >= lastChosen(alternatives[shown])) shown = i;
      });
      return shown;
    }

    // Once the last choice here is answered, the server's word counts again, whether it took
    // that choice or not; earlier answers leave it waiting for its own.
    function chooseReply(userMessage, reply) {
      const choice = { id: reply.id };
      state.choosing[userMessage.id] = choice;
      render();
      choose(reply, () => {
        if (state.choosing[userMessage.id] !== choice) return;
        delete state.choosing[userMessage.id];
        const alternatives = repliesTo(userMessage);
        // Redrawn only if the server did not take it: the arrow pressed keeps the focus.
        if (alternatives[shownIndex(userMessage, alternatives)].id !== choice.id) render();
      });
    }

    function replyView(userMessage, alternatives, index) {
      const reply = alternatives[index];
      const live = state.live;
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
          chooseReply(userMessage, alternatives[i]);
          // Focus stays on the arrow pressed (on the other one at either end).
          const buttons = list.querySelectorAll(`[data-message-id="${alternatives[i].id}"] .alternatives button`);
          const pressed = buttons[i > index ? 1 : 0];
          (pressed && !pressed.disabled ? pressed : [...buttons].find((b) => !b.disabled) || input).focus();
        },
        onRegenerate: isLastTurn && !live ? () => regenerate(reply) : null,
      };
    }

    const shownItem = (reply) => list.querySelector(`[data-message-id="${reply.id}"]`);

    function nearBottom() {
      return window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
    }

    // Update a shown reply in place (the live one, or the one that just ended).
    function updateShown(item, reply) {
      const userMessage = state.messages.find((m) => m.id === reply.parent);
      const alternatives = repliesTo(userMessage);
      const follow = nearBottom();
      // By id: a catch-up replaces the objects of the messages the page holds.
      updateReply(item, replyView(userMessage, alternatives, alternatives.findIndex((m) => m.id === reply.id)));
      if (follow) window.scrollTo(0, document.body.scrollHeight);
    }

    // A redraw replaces every node: the focus goes back to the same button of the same message
    // (after a catch-up when the page is shown again, say), if that message is still shown.
    function focusedButton() {
      const focused = document.activeElement;
      const item = focused && list.contains(focused) && focused.closest("[data-message-id]");
      return item ? { id: item.dataset.messageId, name: focused.title || focused.textContent } : null;
    }

    function focusAgain(was) {
      const item = was && list.querySelector(`[data-message-id="${was.id}"]`);
      const buttons = item ? [...item.querySelectorAll("button")] : [];
      const again = buttons.find((b) => (b.title || b.textContent) === was.name && !b.disabled);
      if (again) again.focus();
    }

    function render() {
      const follow = nearBottom();
      const was = focusedButton();
      list.replaceChildren();
      for (const message of userMessages()) {
        list.appendChild(renderUserMessage(message));
        const alternatives = repliesTo(message);
        if (!alternatives.length) continue;
        list.appendChild(renderReply(replyView(message, alternatives, shownIndex(message, alternatives))));
      }
      focusAgain(was);
      showControls();
      if (follow) window.scrollTo(0, document.body.scrollHeight);
    }

    // Only the live reply changes: when another alternative is shown instead, there is
    // nothing on screen to update.
    let frameQueued = false;
    function renderLiveSoon() {
      if (frameQueued) return;
      frameQueued = true;
      requestAnimationFrame(() => {
        frameQueued = false;
        const item = state.live && shownItem(state.live.reply);
        if (item) updateShown(item, state.live.reply);
      });
    }

    return { render, renderLiveSoon, updateShown, shownItem };
  };
})();
