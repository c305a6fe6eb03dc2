"""Tiny loopback HTTP servers for the client tests: a fixed reply, a WSDL + SOAP echo service."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder:
    def __init__(self, get_body: bytes = b"", post_body: bytes = b"", status: int = 200,
                 content_type: str = "text/xml; charset=utf-8") -> None:
        self.get_body, self.post_body, self.status, self.content_type = get_body, post_body, status, content_type
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.url = ""


@contextmanager
def serve(recorder: Recorder) -> Iterator[Recorder]:
    """Serve ``recorder``: GET answers ``get_body``; POST records the request and answers ``post_body``."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(200, recorder.get_body, "text/xml; charset=utf-8")

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            recorder.requests.append((dict(self.headers), body))
            self._answer(recorder.status, recorder.post_body, recorder.content_type)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
