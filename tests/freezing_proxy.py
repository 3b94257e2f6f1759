"""A TCP proxy on loopback in front of a server, which can make the event-stream connections
through it go silent: nothing more passes either way and nothing is closed, as when a network
drops a connection without a word (a laptop waking up, a phone changing networks). Neither
end can tell that from a model that is slow to answer."""

import socket
import threading
from urllib.parse import urlsplit

STREAM_REQUEST = b"GET /api/messages/"  # …/{id}/stream/, the only GET of a message


class Connection:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self.carries_a_stream = False
        self.silent = False

    def close(self) -> None:
        for end in (self.client, self.upstream):
            end.close()


class FreezingProxy:
    def __init__(self, server_url: str) -> None:
        self.upstream = urlsplit(server_url).hostname, urlsplit(server_url).port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections: list[Connection] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def silence_streams(self) -> int:
        """Silence every open connection that has carried a stream; how many there were."""
        with self.lock:
            streams = [c for c in self.connections if c.carries_a_stream]
        for connection in streams:
            connection.silent = True
        return len(streams)

    def close(self) -> None:
        self.listener.close()
        with self.lock:
            for connection in self.connections:
                connection.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            connection = Connection(client, socket.create_connection(self.upstream))
            with self.lock:
                self.connections.append(connection)
            for source, target in ((client, connection.upstream), (connection.upstream, client)):
                args = (connection, source, target)
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def _pump(self, connection: Connection, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if source is connection.client and data.startswith(STREAM_REQUEST):
                    connection.carries_a_stream = True
                if not connection.silent:
                    target.sendall(data)
        except OSError:
            pass  # the other direction closed both
        connection.close()
        with self.lock:
            if connection in self.connections:
                self.connections.remove(connection)
