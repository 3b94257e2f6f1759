"use strict";
// The JSON API call the page scripts make: same-origin, with the page's CSRF token; an error
// answer becomes an Error carrying the API's message.
window.chatsiteApi = async function (method, url, body) {
  const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const response = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error((data && data.error && data.error.message) || `The server answered HTTP ${response.status}.`);
  }
  return data;
};
