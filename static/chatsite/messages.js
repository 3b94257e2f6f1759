"use strict";
// How one turn looks: the user's text as plain text; a reply as safe Markdown with its status
// in plain words, the reason when it did not complete, token counts, time to first token and
// its actions (copy, regenerate, switch between alternatives); each with the time it was sent.
(function () {
  const { renderMarkdown, updateMarkdown, finishMarkdown, addCopyButton } = window.chatsiteRender;
  const ACTIVE = ["pending", "streaming"];
  const STATUS_TEXT = {
    pending: "Waiting for the model…",
    streaming: "Generating…",
    complete: "Complete",
    stopped: "Stopped",
    interrupted: "Interrupted",
    failed: "Failed",
    unfollowed: "Logged out", // this page's own: it may no longer follow a reply still running
  };
  // What a screen reader hears once when a reply ends without a notice saying more.
  const FINAL_WORDS = {
    complete: "The reply is complete.",
    stopped: "The reply was stopped.",
    interrupted: "The reply was interrupted.",
    failed: "The reply failed.",
  };
  // Reply ids whose reasoning the reader opened, or closed: their choice outlasts re-renders
  // (a streaming reply's shows open until then).
  const openReasoning = new Set();
  const closedReasoning = new Set();

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(text, title, onClick) {
    const node = element("button", "small", text);
    node.type = "button";
    node.title = title;
    node.addEventListener("click", onClick);
    return node;
  }

  // When a message was written, in the reader's time zone and language: the time alone for
  // today's, with the day (and the year, if another) for older ones; the whole date on hover.
  function sentAt(iso) {
    const when = new Date(iso);
    if (!iso || Number.isNaN(when.getTime())) return null;
    const node = element("time", "sent", sentText(when));
    node.dateTime = iso;
    node.title = when.toLocaleString(undefined, { dateStyle: "full", timeStyle: "short" });
    return node;
  }

  function sentText(when) {
    const now = new Date();
    const shown = { hour: "2-digit", minute: "2-digit" };
    if (when.toDateString() !== now.toDateString()) {
      Object.assign(shown, { day: "numeric", month: "short" });
      if (when.getFullYear() !== now.getFullYear()) shown.year = "numeric";
    }
    return when.toLocaleString(undefined, shown);
  }

  // A page left open past midnight: yesterday's times alone would read as today's. Also when
  // the page is shown again, as a sleeping laptop or a background tab may run the timer late.
  function redateSentTimes() {
    for (const node of document.querySelectorAll("time.sent")) {
      node.textContent = sentText(new Date(node.dateTime));
    }
  }

  function redateAtMidnight() {
    const now = new Date();
    const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
    setTimeout(() => {
      redateSentTimes();
      redateAtMidnight();
    }, midnight - now + 1000);
  }

  redateAtMidnight();
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") redateSentTimes();
  });

  // Each message starts with a heading, seen only by screen readers: a way to move from one
  // message to the next.
  function renderUserMessage(message) {
    const item = element("li", "message user");
    item.dataset.messageId = message.id;
    item.appendChild(element("h2", "offscreen", "You said"));
    item.appendChild(element("div", "body plain", message.content));
    const sent = sentAt(message.created_at);
    if (sent) item.appendChild(sent);
    return item;
  }

  // Why a reply is not simply complete, in words a person reads.
  function noticeFor(reply, status, reconnecting) {
    if (reconnecting) return "Connection lost. Reconnecting…";
    if (status === "unfollowed") {
      return "This page can no longer follow the reply: it goes on, and is kept. Log in again to read it.";
    }
    if (status === "failed") return `Failed: ${reply.error || "the model gave no reason."}`;
    if (status === "interrupted") {
      return `Interrupted: ${reply.error || "the reply stopped before it was complete."}`;
    }
    if (status === "stopped") {
      // A reason is given when it was not the owner's Stop (an API client that disconnected).
      if (reply.error) return `Stopped: ${reply.error}`;
      return reply.content ? "Stopped: you stopped this reply; the text up to then is kept." : "Stopped before the model wrote anything.";
    }
    if (status === "complete" && reply.finish_reason === "length") {
      return "Cut short: the model reached its length limit.";
    }
    if (status === "complete" && ["content_filter", "sensitive"].includes(reply.finish_reason)) {
      return "Cut short by the provider's content filter.";
    }
    return "";
  }

  // The end of a reply, said once in the page's status line (announcer): the notice the page
  // shows for it, which says how it ended and why, else the final words. The same words again
  // get a trailing no-break space: changed text, or some screen readers would not say them.
  function announceEnd(announcer, reply) {
    if (!FINAL_WORDS[reply.status]) return;
    const words = noticeFor(reply, reply.status, false) || FINAL_WORDS[reply.status];
    announcer.textContent = announcer.textContent === words ? `${words}\u00a0` : words;
  }

  // A reply a /v1 client sent in its own history names no provider (nor model): this site
  // did not write it, and its heading and footer say so.
  const EARLIER_ANSWER = "An earlier answer the API request brought";
  const speaker = (reply, modelLabel) => (reply.provider ? modelLabel(reply.model) : null);

  function duration(ms) {
    return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
  }

  function usageText(reply, modelLabel) {
    const parts = [speaker(reply, modelLabel) ?? `${EARLIER_ANSWER}, not generated here`];
    if (reply.total_tokens !== null) {
      const estimated = reply.usage_source === "estimated" ? " (estimated)" : "";
      parts.push(`${reply.prompt_tokens} in · ${reply.completion_tokens} out · ${reply.total_tokens} tokens${estimated}`);
    }
    if (reply.reasoning_tokens) parts.push(`${reply.reasoning_tokens} reasoning tokens`);
    if (reply.time_to_first_token_ms !== null) {
      parts.push(`first token in ${duration(reply.time_to_first_token_ms)}`);
    }
    return parts.join(" · ");
  }

  function reasoningOpen(id, status) {
    return openReasoning.has(id) || (ACTIVE.includes(status) && !closedReasoning.has(id));
  }

  function renderReasoning(view, status) {
    const id = view.reply.id;
    const details = element("details", "reasoning");
    details.open = reasoningOpen(id, status);
    const summary = element("summary", "", ACTIVE.includes(status) ? "Thinking…" : "Reasoning");
    details.append(summary, element("div", "plain", view.reasoning));
    // The reader's own clicks (and Enter or Space on the summary), not re-renders' changes.
    summary.addEventListener("click", function () {
      const opening = !details.open;
      (opening ? openReasoning : closedReasoning).add(id);
      (opening ? closedReasoning : openReasoning).delete(id);
    });
    return details;
  }

  function renderAlternatives(view) {
    const nav = element("span", "alternatives");
    const previous = button("‹", "Previous reply", () => view.onChoose(view.index - 1));
    const next = button("›", "Next reply", () => view.onChoose(view.index + 1));
    previous.setAttribute("aria-label", "Previous reply");
    next.setAttribute("aria-label", "Next reply");
    previous.disabled = view.index === 0;
    next.disabled = view.index === view.count - 1;
    nav.append(previous, element("span", "", `${view.index + 1} of ${view.count}`), next);
    return nav;
  }

  function renderFooter(view, status) {
    const footer = element("div", "meta");
    if (view.count > 1) footer.appendChild(renderAlternatives(view));
    const sent = sentAt(view.reply.created_at);
    if (sent) footer.appendChild(sent);
    footer.appendChild(element("span", "usage", usageText(view.reply, view.modelLabel)));
    footer.appendChild(element("span", "status", STATUS_TEXT[status] || status));
    if (!ACTIVE.includes(status)) {
      if (view.content) addCopyButton(footer, () => view.content, "Copy", "copy reply-copy small");
      if (view.onRegenerate) footer.appendChild(button("Regenerate", "Ask for another reply", view.onRegenerate));
    }
    return footer;
  }

  function renderNotice(view, status) {
    const notice = noticeFor(view.reply, status, view.reconnecting);
    return notice ? element("p", `reply-notice notice-${status}`, notice) : null;
  }

  function replyStatus(view) {
    return view.live && (view.content || view.reasoning) ? "streaming" : view.reply.status;
  }

  function setItemStatus(item, status) {
    item.className = `message assistant status-${status}`;
    item.dataset.status = status;
    item.setAttribute("aria-busy", String(ACTIVE.includes(status)));
  }

  // view: {reply, content, reasoning, live, reconnecting, index, count, modelLabel,
  //        onChoose(index), onRegenerate (null when not offered)}
  function renderReply(view) {
    const status = replyStatus(view);
    const item = element("li");
    item.dataset.messageId = view.reply.id;
    setItemStatus(item, status);
    const who = speaker(view.reply, view.modelLabel);
    item.appendChild(element("h2", "offscreen", who === null ? EARLIER_ANSWER : `${who} said`));
    if (view.reasoning) item.appendChild(renderReasoning(view, status));
    const body = element("div", "body markdown");
    (view.live ? updateMarkdown : renderMarkdown)(body, view.content);
    item.appendChild(body);
    const notice = renderNotice(view, status);
    if (notice) item.appendChild(notice);
    item.appendChild(renderFooter(view, status));
    return item;
  }

  // Text that only grew is appended to its text node, so a selection in it stays.
  function setText(node, text) {
    const only = node.childNodes.length === 1 ? node.firstChild : null;
    if (only && only.nodeType === Node.TEXT_NODE && text.startsWith(only.data)) {
      if (text.length > only.data.length) only.appendData(text.slice(only.data.length));
    } else if (node.textContent !== text) {
      node.textContent = text;
    }
  }

  function updateReasoning(item, view, status) {
    const details = item.querySelector(":scope > details.reasoning");
    if (!view.reasoning) {
      if (details) details.remove();
      return;
    }
    if (!details) {
      item.insertBefore(renderReasoning(view, status), item.querySelector(":scope > .body"));
      return;
    }
    details.open = reasoningOpen(view.reply.id, status);
    setText(details.querySelector("summary"), ACTIVE.includes(status) ? "Thinking…" : "Reasoning");
    setText(details.querySelector(".plain"), view.reasoning);
  }

  // Swap a part (notice, footer) only when it changed: unchanged buttons keep keyboard focus.
  function updatePart(item, old, fresh, always) {
    if (old && fresh && (always || !old.isEqualNode(fresh))) old.replaceWith(fresh);
    else if (old && !fresh) old.remove();
    else if (!old && fresh) item.insertBefore(fresh, item.querySelector(":scope > .meta"));
  }

  // Update a shown reply in place, for the live reply and at its end: unchanged nodes stay,
  // so a reader can select text while it streams. The end equals a whole render of the text.
  function updateReply(item, view) {
    const status = replyStatus(view);
    setItemStatus(item, status);
    updateReasoning(item, view, status);
    const body = item.querySelector(":scope > .body");
    (view.live ? updateMarkdown : finishMarkdown)(body, view.content);
    updatePart(item, item.querySelector(":scope > .reply-notice"), renderNotice(view, status));
    // A final footer's buttons must act on the final reply (its Copy, its Regenerate).
    updatePart(item, item.querySelector(":scope > .meta"), renderFooter(view, status), !view.live);
  }

  window.chatsiteMessages = { ACTIVE, announceEnd, renderUserMessage, renderReply, updateReply };
})();
