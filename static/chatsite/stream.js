"use strict";
// Follow one reply's Server-Sent Events stream until its final event.
// EventSource reconnects by itself after a dropped connection and resumes from Last-Event-ID.
// If the server refuses a reconnect (EventSource then gives up for good), ask the API what
// became of the reply and, while it still runs, follow again from the last event seen.
// A connection that dies without closing (a network switch, a laptop waking) is invisible to
// EventSource: the server pings a silent stream, so silence longer than that is the same case.
(function () {
  const RECONNECT_NOTICE_MS = 5000; // Chromium retries after 3 s: only a longer gap is news
  const RETRY_MS = 3000;
  const ACTIVE = ["pending", "streaming"];

  // handlers: onText(field, text) for "content"/"reasoning"; onFinal(message or null);
  // onFailed({error, message}); onConnection(ok); onLoggedOut(text): no longer allowed to
  // follow it (the session ended); onGone(): its conversation was deleted; refresh() -> the
  // reply from the API, or null when it is gone. silenceMs: how long without an event or a
  // ping means the connection is dead. Returns {close()}.
  function followReply(streamUrl, handlers, silenceMs) {
    let source = null;
    let lastEventId = "";
    let noticeTimer = null;
    let silenceTimer = null;
    let lost = false;
    let closed = false;

    // A connection given up for good: the reply is asked after, and followed again, soon.
    function retryLater() {
      clearTimeout(silenceTimer);
      setTimeout(retry, RETRY_MS);
    }

    // Silence is a dead connection: closed here, and retried as after a refused reconnect
    // (unless the server closed it: a retry is on its way).
    function silent() {
      if (closed || source.readyState === EventSource.CLOSED) return;
      source.close();
      connectionTrouble();
      retryLater();
    }

    function listen() {
      clearTimeout(silenceTimer);
      silenceTimer = setTimeout(silent, silenceMs);
    }

    function connected() {
      clearTimeout(noticeTimer);
      noticeTimer = null;
      listen();
      if (lost) {
        lost = false;
        handlers.onConnection(true);
      }
    }

    function connectionTrouble() {
      noticeTimer = noticeTimer || setTimeout(function () {
        lost = true;
        handlers.onConnection(false);
      }, RECONNECT_NOTICE_MS);
    }

    function open() {
      const url = lastEventId ? `${streamUrl}?last_event_id=${encodeURIComponent(lastEventId)}` : streamUrl;
      source = new EventSource(url);
      listen(); // a connection that never answers is silent too
      const text = (field) => (event) => {
        lastEventId = event.lastEventId;
        connected();
        handlers.onText(field, JSON.parse(event.data).content);
      };
      source.addEventListener("open", connected);
      source.addEventListener("ping", connected);
      source.addEventListener("delta", text("content"));
      source.addEventListener("reasoning", text("reasoning"));
      source.addEventListener("done", function (event) {
        close();
        handlers.onFinal(JSON.parse(event.data).message);
      });
      source.addEventListener("error", function (event) {
        if (closed) return;
        if (event.data !== undefined) {
          close(); // the server's own error event: the reply failed, with a reason
          handlers.onFailed(JSON.parse(event.data));
          return;
        }
        connectionTrouble();
        if (source.readyState === EventSource.CLOSED) retryLater();
      });
    }

    async function retry() {
      if (closed) return;
      let reply;
      try {
        reply = await handlers.refresh();
      } catch (error) {
        if (error.status === 401) {
          close(); // retrying cannot help: the reply goes on, and is kept, on the server
          handlers.onLoggedOut(error.message);
          return;
        }
        if (error.status === 404) {
          close(); // the conversation was deleted meanwhile, the reply with it
          handlers.onGone();
          return;
        }
        setTimeout(retry, RETRY_MS); // the server is unreachable: try again later
        return;
      }
      if (closed) return;
      if (reply && ACTIVE.includes(reply.status)) {
        open();
        return;
      }
      close();
      handlers.onFinal(reply);
    }

    function close() {
      closed = true;
      clearTimeout(noticeTimer);
      clearTimeout(silenceTimer);
      if (source) source.close();
    }

    open();
    return { close };
  }

  window.chatsiteStream = { followReply };
})();
