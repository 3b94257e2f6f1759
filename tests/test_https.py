"""A site served over HTTPS only: plain HTTP is redirected, browsers are told to keep to HTTPS,
and cookies are sent over HTTPS alone. The test server runs with --proxy-headers, as behind a
TLS proxy: X-Forwarded-Proto says which scheme the client used."""

import httpx

# As a TLS proxy sends them (daphne reads the scheme only with the client's address).
HTTPS = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


def test_an_https_only_site_redirects_plain_http_and_asks_browsers_to_keep_to_https(
    start_server,
):
    server = start_server(HTTPS_REDIRECT="true", HSTS_SECONDS="31536000", SECURE_COOKIES="true")
    plain = httpx.get(f"{server.url}/accounts/login/?next=/")
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://127.0.0.1:{server.port}/accounts/login/?next=/"
    assert "Strict-Transport-Security" not in plain.headers  # meaningless over plain HTTP

    secure = httpx.get(f"{server.url}/accounts/login/", headers=HTTPS)
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    csrf_cookie = secure.headers["Set-Cookie"]
    assert csrf_cookie.startswith("csrftoken=") and "; Secure" in csrf_cookie


def test_by_default_plain_http_is_served_and_no_hsts_is_sent(server):
    # ./dev serve is plain HTTP on 127.0.0.1: a redirect or HSTS would lock a browser out.
    for headers in ({}, HTTPS):
        page = httpx.get(f"{server.url}/accounts/login/", headers=headers)
        assert page.status_code == 200
        assert "Strict-Transport-Security" not in page.headers
        assert "; Secure" not in page.headers["Set-Cookie"]
