"use strict";
// The JSON API call the page scripts make: same-origin, with the page's CSRF token; an error
// answer becomes an Error carrying the API's message (and its HTTP status, 0 when the server
// could not be reached or did not answer in time), in words that say what to do.
// The token is read from its cookie at each call: logging in again in another window changes
// it, and the one the page was drawn with would be refused.
function chatsiteCsrfToken() {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  return cookie ? decodeURIComponent(cookie.slice("csrftoken=".length)) : document.querySelector("input[name=csrfmiddlewaretoken]").value;
}

// A call the server has not answered by then is given up: a stalled connection would
// otherwise keep Send off until the browser itself gives up, minutes later. The request may
// have been carried out all the same: the chat page then catches up with the conversation as
// stored (chat.js), and a message sent again is safe, its client_id making the server's
// answer the first one's.
const CHATSITE_ANSWER_WITHIN_MS = 30000;

window.chatsiteApi = async function (method, url, body) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), CHATSITE_ANSWER_WITHIN_MS);
  let response;
  let text;
  try {
    response = await fetch(url, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRFToken": chatsiteCsrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal: controller.signal,
    });
    text = await response.text();
  } catch (error) {
    const message = controller.signal.aborted
      ? "chatsite did not answer in time: check the connection, then try again."
      : "Could not reach chatsite: check the connection, then try again.";
    throw Object.assign(new Error(message), { status: 0 });
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (error) {
    // not JSON (a proxy's error page): the status says what happened
  }
  if (response.status === 401) {
    const message = "You are no longer logged in: reload the page to log in again.";
    throw Object.assign(new Error(message), { status: 401 });
  }
  if (!response.ok) {
    const message = (data && data.error && data.error.message) || `The server answered HTTP ${response.status}: try again in a moment.`;
    throw Object.assign(new Error(message), { status: response.status });
  }
  return data;
};
