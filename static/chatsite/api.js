"use strict";
// The JSON API call the page scripts make: same-origin, with the page's CSRF token; an error
// answer becomes an Error carrying the API's message (and its HTTP status, 0 when the server
// could not be reached), in words that say what to do.
// The token is read from its cookie at each call: logging in again in another window changes
// it, and the one the page was drawn with would be refused.
function chatsiteCsrfToken() {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  return cookie ? decodeURIComponent(cookie.slice("csrftoken=".length)) : document.querySelector("input[name=csrfmiddlewaretoken]").value;
}

window.chatsiteApi = async function (method, url, body) {
  const csrfToken = chatsiteCsrfToken();
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (error) {
    throw Object.assign(new Error("Could not reach chatsite: check the connection, then try again."), { status: 0 });
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.status === 401) {
    const message = "You are no longer logged in: reload the page to log in again.";
    throw Object.assign(new Error(message), { status: 401 });
  }
  if (!response.ok) {
    const message = (data && data.error && data.error.message) || `The server answered HTTP ${response.status}.`;
    throw Object.assign(new Error(message), { status: response.status });
  }
  return data;
};
