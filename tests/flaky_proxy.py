"""An HTTP proxy on 127.0.0.1 that answers some requests with 503 instead of forwarding them:
a real server behind it, with the transient failures the agents must retry through."""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

# Hop-by-hop headers are the proxy's own business (RFC 9110 §7.6.1).
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class FlakyProxy:
    url: str
    failures: list[str] = field(default_factory=list)
    """``"METHOD path"`` of every request answered with 503."""
    forwarded: list[str] = field(default_factory=list)


@contextmanager
def flaky_proxy(upstream: str, fail: Callable[[str, str, int], bool]) -> Iterator[FlakyProxy]:
    """Forwards to ``upstream`` (``http://host:port``); ``fail(method, path, n)`` decides, for
    the n-th request (from 0) of that method and path (query included), whether it gets a 503
    instead."""
    host, port = upstream.removeprefix("http://").split(":")
    seen: dict[tuple[str, str], int] = {}
    lock = threading.Lock()
    proxy = FlakyProxy(url="")

    connections: set[socket.socket] = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with lock:
                connections.add(self.connection)

        def finish(self) -> None:
            with lock:
                connections.discard(self.connection)
            super().finish()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            key = (self.command, self.path)
            with lock:
                n = seen.get(key, 0)
                seen[key] = n + 1
            if fail(self.command, self.path, n):
                proxy.failures.append(f"{self.command} {self.path}")
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            proxy.forwarded.append(f"{self.command} {self.path}")
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            finally:
                conn.close()
            self.send_response(response.status)
            for k, v in response.getheaders():
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle
        do_PROPFIND = do_MKCOL = do_COPY = do_MOVE = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # Handler threads are joined on close (block_on_close), once their kept-alive connections
    # are shut: nothing of the proxy outlives the block.
    server.daemon_threads = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield proxy
    finally:
        server.shutdown()
        with lock:
            still_open = list(connections)
        for connection in still_open:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        thread.join()
