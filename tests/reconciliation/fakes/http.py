"""A threaded HTTP server on 127.0.0.1 that hands every request to a fake's ``handle``.

Money goes out as exact JSON numbers: ``dumps`` writes a Decimal's own digits (``12.30``),
as the real APIs do, instead of through float.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_DECIMAL = re.compile(r'"__decimal__(-?[0-9.Ee+-]+)__"')


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, Any]
    body: Any


Answer = tuple[int, bytes] | tuple[int, bytes, dict[str, str]]
Handle = Callable[[Recorded], Answer]


def dumps(obj: Any) -> bytes:
    def default(value: Any) -> str:
        if isinstance(value, Decimal):
            return f"__decimal__{value}__"
        raise TypeError(type(value).__name__)

    return _DECIMAL.sub(r"\1", json.dumps(obj, default=default)).encode()


def parse_form(text: str) -> dict[str, Any]:
    """Form or query encoding with brackets (``arrival_date[gte]=1``, ``expand[0]=x``)."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _handler(handle: Handle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            headers = {k.lower(): v for k, v in self.headers.items()}
            body: Any = raw
            if "json" in headers.get("content-type", "") and raw:
                body = json.loads(raw)
            elif "x-www-form-urlencoded" in headers.get("content-type", ""):
                body = parse_form(raw)
            answer = handle(Recorded(method, parts.path, headers, parse_form(parts.query), body))
            status, payload = answer[0], answer[1]
            extra = answer[2] if len(answer) == 3 else {}
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serving(handle: Handle) -> Iterator[str]:
    """Serve ``handle`` until the block ends; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(handle))
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
