"use strict";
// The conversation drawn on the chat page: each user message with the reply chosen among its
// alternatives. The live reply is redrawn in place, at most once per animation frame.
(function () {
  const { renderUserMessage, renderReply, updateReply } = window.chatsiteMessages;

  // state: the page's {messages, live, chosen}, read at each drawing (chat.js changes it).
  // showControls() sets the page's buttons; regenerate(reply) asks for another reply.
  // Returns {render, renderLiveSoon, updateShown, shownItem}.
  window.chatsiteThread = function (state, { list, input, models, showControls, regenerate }) {
    function modelLabel(id) {
      const model = models.find((m) => m.id === id);
      return model ? model.label : id;
    }

    const userMessages = () => state.messages.filter((m) => m.role === "user");
    const repliesTo = (userMessage) =>
      state.messages.filter((m) => m.role === "assistant" && m.parent === userMessage.id);

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
          state.chosen[userMessage.id] = i;
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

    function render() {
      const follow = nearBottom();
      list.replaceChildren();
      for (const message of userMessages()) {
        list.appendChild(renderUserMessage(message));
        const alternatives = repliesTo(message);
        if (!alternatives.length) continue;
        const index = Math.min(state.chosen[message.id] ?? alternatives.length - 1, alternatives.length - 1);
        list.appendChild(renderReply(replyView(message, alternatives, index)));
      }
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
