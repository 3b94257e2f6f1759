"use strict";
// How one turn looks: the user's text as plain text; a reply as safe Markdown with its status
// in plain words, the reason when it did not complete, token counts, time to first token and
// its actions (copy, regenerate, switch between alternatives).
(function () {
  const { renderMarkdown, addCopyButton } = window.chatsiteRender;
  const ACTIVE = ["pending", "streaming"];
  const STATUS_TEXT = {
    pending: "Waiting for the model…",
    streaming: "Generating…",
    complete: "Complete",
    stopped: "Stopped",
    interrupted: "Interrupted",
    failed: "Failed",
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

  function renderUserMessage(message) {
    const item = element("li", "message user");
    item.dataset.messageId = message.id;
    item.appendChild(element("div", "body plain", message.content));
    return item;
  }

  // Why a reply is not simply complete, in words a person reads.
  function noticeFor(reply, status, reconnecting) {
    if (reconnecting) return "Connection lost. Reconnecting…";
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

  function duration(ms) {
    return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
  }

  function usageText(reply, modelLabel) {
    const parts = [modelLabel(reply.model)];
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

  function renderReasoning(view, status) {
    const id = view.reply.id;
    const details = element("details", "reasoning");
    details.open = openReasoning.has(id) || (ACTIVE.includes(status) && !closedReasoning.has(id));
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
    footer.appendChild(element("span", "usage", usageText(view.reply, view.modelLabel)));
    footer.appendChild(element("span", "status", STATUS_TEXT[status] || status));
    if (!ACTIVE.includes(status)) {
      if (view.content) addCopyButton(footer, () => view.content, "Copy", "copy reply-copy small");
      if (view.onRegenerate) footer.appendChild(button("Regenerate", "Ask for another reply", view.onRegenerate));
    }
    return footer;
  }

  // view: {reply, content, reasoning, live, reconnecting, index, count, modelLabel,
  //        onChoose(index), onRegenerate (null when not offered)}
  function renderReply(view) {
    const reply = view.reply;
    const status = view.live && (view.content || view.reasoning) ? "streaming" : reply.status;
    const item = element("li", `message assistant status-${status}`);
    item.dataset.messageId = reply.id;
    item.dataset.status = status;
    item.setAttribute("aria-busy", String(ACTIVE.includes(status)));
    if (view.reasoning) item.appendChild(renderReasoning(view, status));
    const body = element("div", "body markdown");
    renderMarkdown(body, view.content);
    item.appendChild(body);
    const notice = noticeFor(reply, status, view.reconnecting);
    if (notice) item.appendChild(element("p", `reply-notice notice-${status}`, notice));
    item.appendChild(renderFooter(view, status));
    return item;
  }

  window.chatsiteMessages = { ACTIVE, renderUserMessage, renderReply };
})();
