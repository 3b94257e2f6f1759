"""Failures below HTTP: a provider that refuses the connection, hangs up without answering,
answers with bytes that are not HTTP, or shows a TLS certificate chatsite does not trust.

Each ends the reply as failed, with the reason and retry the failure deserves, whichever
transport carries httpx's requests. The provider here is a real socket on loopback.
"""

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from conversations.providers import http
from conversations.providers.failures import certificate_problem
from tests.replies import RETRY_ATTEMPTS, assert_failed, failed_reply
from tests.stub import openai_stream
from tests.stub_server import ProviderStub


class RawProvider:
    """A TCP server that reads each request's head and answers with fixed bytes (maybe
    none), then closes the connection."""

    scheme = "http"

    def __init__(self, answer: bytes = b"") -> None:
        self.answer = answer
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.listener.getsockname()[1]}/v1"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed: the test is over
            self.connections += 1
            with connection:
                self.respond(connection)

    def respond(self, connection: socket.socket) -> None:
        received = b""
        while b"\r\n\r\n" not in received and (data := connection.recv(65536)):
            received += data
        connection.sendall(self.answer)


@pytest.fixture
def raw_provider() -> Iterator:
    """raw_provider(answer) -> a RawProvider already listening."""
    providers: list[RawProvider] = []

    def start(answer: bytes) -> RawProvider:
        providers.append(RawProvider(answer))
        providers[-1].thread.start()
        return providers[-1]

    yield start
    for provider in providers:
        provider.listener.close()


def closed_port_url() -> str:
    """A loopback URL on which nothing listens: connecting to it is refused at once."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def outcomes(reply: dict) -> list[str]:
    return [attempt["outcome"] for attempt in reply["metadata"]["attempts"]]


def test_a_refused_connection_is_retried_then_fails_as_a_connect_error(
    start_server, client_for, alice
):
    process = start_server(OPENAI_BASE_URL=closed_port_url())
    reply, events, _, _ = failed_reply(client_for(alice, process.url))
    assert_failed(reply, events, "connect_error")
    assert reply["error"] == "Could not connect to OpenAI-compatible."
    assert outcomes(reply) == ["connect_error"] * RETRY_ATTEMPTS


@pytest.mark.parametrize(
    "answer",
    [b"", b"SSH-2.0-OpenSSH_9.6\r\n\r\n"],
    ids=["hangs-up-without-answering", "answers-in-another-protocol"],
)
def test_a_provider_not_answering_in_http_fails_as_cut_off_without_a_retry(
    start_server, client_for, alice, raw_provider, answer
):
    provider = raw_provider(answer)
    process = start_server(OPENAI_BASE_URL=provider.url)
    reply, events, _, _ = failed_reply(client_for(alice, process.url))
    # The provider's failure, not chatsite's own ("internal_error"); not asked again, as the
    # request may have reached the model.
    assert_failed(reply, events, "connection_dropped")
    assert "was cut off" in reply["error"]
    assert outcomes(reply) == ["connection_dropped"]
    assert provider.connections == 1


def tls_server_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server's TLS context with a certificate for 127.0.0.1 issued by `ca`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


class UntrustedTLSProvider(RawProvider):
    """A TLS server whose certificate comes from a CA no one trusts (trustme's): each client
    refuses it during the handshake."""

    scheme = "https"

    def __init__(self) -> None:
        super().__init__()
        self.context = tls_server_context(trustme.CA())

    def respond(self, connection: socket.socket) -> None:
        try:
            with self.context.wrap_socket(connection, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass  # the client refused the certificate


@pytest.fixture
def untrusted_tls_provider() -> Iterator[UntrustedTLSProvider]:
    provider = UntrustedTLSProvider()
    provider.thread.start()
    yield provider
    provider.listener.close()


def test_an_untrusted_certificate_fails_at_once_saying_why(
    start_server, client_for, alice, untrusted_tls_provider
):
    process = start_server(OPENAI_BASE_URL=untrusted_tls_provider.url)
    reply, events, _, _ = failed_reply(client_for(alice, process.url))
    assert_failed(reply, events, "tls_error")
    assert reply["error"] == (
        "Could not verify the TLS certificate of OpenAI-compatible: "
        "unable to get local issuer certificate."
    )
    # Not retried: another attempt meets the same certificate.
    assert outcomes(reply) == ["tls_error"]
    assert untrusted_tls_provider.connections == 1


@pytest.fixture
def tls_stub(tmp_path) -> Iterator[tuple[ProviderStub, Path]]:
    """A provider stub behind TLS, and the file of the CA that issued its certificate."""
    ca = trustme.CA()
    ca_file = tmp_path / "provider-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    provider = ProviderStub(ssl_context=tls_server_context(ca)).start()
    yield provider, ca_file
    provider.stop()


def test_a_provider_behind_a_private_ca_is_trusted_through_ssl_cert_file(
    start_server, client_for, alice, tls_stub
):
    provider, ca_file = tls_stub
    process = start_server(OPENAI_BASE_URL=f"{provider.url}/v1", SSL_CERT_FILE=str(ca_file))
    provider.queue(openai_stream(["Over", " TLS"]))
    client = client_for(alice, process.url)
    conversation = client.new_conversation()
    reply_id = client.send(conversation["id"], "Hi").json()["assistant_message"]["id"]
    reply = client.wait_final(conversation["id"], reply_id)
    assert (reply["status"], reply["content"]) == ("complete", "Over TLS")
    assert provider.requests[0].path == "/v1/chat/completions"


@pytest.fixture
def certificates_read_afresh() -> Iterator[None]:
    """provider_ssl_context() reads the certificates again, here and for the next test."""
    http.provider_ssl_context.cache_clear()
    yield
    http.provider_ssl_context.cache_clear()


def test_every_event_loop_trusts_the_certificates_read_once(
    monkeypatch, tls_stub, certificates_read_afresh
):
    # Reading them costs about 10 ms of CPU, which each loop's first reply paid twice, with
    # the loop held up; now once per process (at start-up in a server).
    provider, ca_file = tls_stub
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    reads = []
    load_verify_locations = ssl.SSLContext.load_verify_locations

    def counted(context: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        reads.append(args)
        load_verify_locations(context, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)

    async def one_request() -> str:
        provider.queue(openai_stream(["Trusted"]))
        client = http.client()
        try:
            return (await client.post(f"{provider.url}/v1/chat/completions", json={})).text
        finally:
            await client.aclose()

    first, second = asyncio.run(one_request()), asyncio.run(one_request())  # two loops
    assert "Trusted" in first and "Trusted" in second
    assert reads == [(str(ca_file), None, None)]


def test_httpx_own_transport_names_the_certificate_problem_too(untrusted_tls_provider):
    # A proxy from the environment (HTTPS_PROXY) sends requests through httpx's own transport,
    # whose errors carry the SSL error differently from aiohttp's.
    with pytest.raises(httpx.ConnectError) as refused, httpx.Client() as client:
        client.get(untrusted_tls_provider.url)
    assert certificate_problem(refused.value) == "unable to get local issuer certificate"


@pytest.fixture
def unanswered_port() -> Iterator[str]:
    """A loopback URL whose listener never accepts and whose queue is full: the kernel drops
    new connection requests, so connecting waits until the connect timeout."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    queued = []
    try:
        while len(queued) < 8:  # Linux queues backlog + 1: the next one waits
            try:
                queued.append(socket.create_connection(listener.getsockname(), timeout=1))
            except TimeoutError:
                break
        else:
            pytest.fail("the listener's queue never filled")
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        for connection in queued:
            connection.close()
        listener.close()


def test_a_connect_timeout_is_retried_then_fails_as_a_timeout(
    start_server, client_for, alice, unanswered_port
):
    process = start_server(OPENAI_BASE_URL=unanswered_port, PROVIDER_CONNECT_TIMEOUT="0.3")
    reply, events, _, _ = failed_reply(client_for(alice, process.url), wait_first=True)
    assert_failed(reply, events, "timeout")
    assert reply["error"] == "OpenAI-compatible did not answer in time (connect timeout)."
    assert outcomes(reply) == ["timeout"] * RETRY_ATTEMPTS


def test_a_server_stopping_closes_its_provider_connections_without_an_error(
    start_server, stub, client_for, alice
):
    process = start_server()
    client = client_for(alice, process.url)
    conversation = client.new_conversation()
    body = client.send(conversation["id"], "Hi").json()
    assert client.wait_final(conversation["id"], body["assistant_message"]["id"])["status"] == (
        "complete"
    )
    process.stop()  # SIGTERM, as a service manager stops it
    assert process.process.returncode is not None
    assert "Unclosed" not in process.log()
    assert " ERROR " not in process.log()
