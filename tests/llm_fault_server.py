"""A loopback OpenAI-compatible chat (and completions) server whose faults are chosen by markers in the request text.

A marker anywhere in the messages picks the behaviour for that request's first attempts, after which
the server answers normally (so a retry can succeed):

    @429xN      answer 429 with ``Retry-After: <retry_after>`` for the first N attempts
    @500xN      answer 500 for the first N attempts
    @stallxN    say nothing for ``stall_s`` seconds (past the client's timeout) for the first N attempts
    @badjsonxN  answer 200 with a truncated JSON body for the first N attempts
    @dropxN     close the connection without answering for the first N attempts
    @400        always answer 400 (a request the server will never accept)
    @401        always answer 401 (the key is refused)
    @garble     answer text with no score on its first line
    @echo400    always answer 400 quoting the request's Authorization and api-key headers (a leaky proxy)
    @echo401    always answer 401 quoting them
    @echo500xN  answer 500 quoting them for the first N attempts
    @echo       (in an answered request) the answer quotes them after the score line
    @score=S    answer score S (default: a score derived from the text, 0-5 in steps of 0.5)

Every request is logged (content key, attempt number, what was done, when) so tests can count retries
and prove which examples were asked twice. Run as a script for benchmarks:
``python tests/llm_fault_server.py --port 8123 --delay 0.2``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

_MARKER = re.compile(r"@(429|500|stall|badjson|drop|echo500)x(\d+)")


@dataclass(frozen=True)
class Hit:
    key: str  # sha256 of the request's messages
    attempt: int  # 1 for the first request with these messages
    action: str  # ok | 429 | 500 | stall | badjson | drop | 400
    at: float  # time.monotonic() when the request arrived
    messages: tuple[tuple[str, str], ...]
    authorization: str
    path: str = ""  # with the query string
    api_key_header: str = ""  # Azure-style clients send the key here instead of Authorization


@contextmanager
def refusing_base_url() -> Iterator[str]:
    """A base URL where nothing listens: the port is bound (so no other process can take it) but not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as reserved:
        reserved.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{reserved.getsockname()[1]}/v1"


class FaultServer:
    def __init__(self, delay_s: float = 0.0, retry_after: str = "1", stall_s: float = 3.0, port: int = 0) -> None:
        self.delay_s = delay_s
        self.retry_after = retry_after
        self.stall_s = stall_s
        self.hits: list[Hit] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-server", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def attempts(self, marker: str) -> int:
        """Requests whose messages contain ``marker``."""
        with self._lock:
            return sum(1 for hit in self.hits if any(marker in content for _, content in hit.messages))

    @staticmethod
    def message_key(messages: list[dict[str, str]]) -> str:
        return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()

    def decide(
        self, messages: list[dict[str, str]], authorization: str, path: str = "", api_key_header: str = ""
    ) -> tuple[Hit, str]:
        """(the logged hit, the answer text if the action is ok)."""
        text = "\n".join(str(m.get("content", "")) for m in messages)
        key = self.message_key(messages)
        with self._lock:
            attempt = self._attempts[key] = self._attempts.get(key, 0) + 1
            action = _action(text, attempt)
            contents = tuple((m.get("role", ""), str(m.get("content", ""))) for m in messages)
            hit = Hit(key, attempt, action, time.monotonic(), contents, authorization, path, api_key_header)
            self.hits.append(hit)
        return hit, _answer(text, key, f"Authorization: {authorization} api-key: {api_key_header}")

    def track(self, change: int) -> None:
        with self._lock:
            self.in_flight += change
            self.max_in_flight = max(self.max_in_flight, self.in_flight)


def _action(text: str, attempt: int) -> str:
    for fixed in ("echo400", "echo401", "400", "401"):
        if f"@{fixed}" in text:
            return fixed
    for kind, count in _MARKER.findall(text):
        if attempt <= int(count):
            return kind
    return "ok"


def _answer(text: str, key: str, headers: str = "") -> str:
    if "@echo" in text and not re.search(r"@echo(400|401|500)", text):
        return f"4\nYou sent {headers}; the explanation quotes it."
    if "@garble" in text:
        return "What a lovely answer, I enjoyed reading it.\nNo number here."
    forced = re.search(r"@score=([-\d.]+)", text)
    score = forced.group(1) if forced else f"{(int(key[:8], 16) % 11) / 2:g}"
    return f"{score}\nThe response addresses the instruction; explanation for {key[:8]}."


def _completion(model: str, text: str, prompt_chars: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {
            "prompt_tokens": prompt_chars // 4,
            "completion_tokens": len(text) // 4,
            "total_tokens": prompt_chars // 4 + len(text) // 4,
        },
    }


def _text_completion(model: str, text: str, prompt_chars: int) -> dict[str, Any]:
    completion = _completion(model, text, prompt_chars)
    completion["object"] = "text_completion"
    completion["choices"] = [{"index": 0, "finish_reason": "stop", "text": text}]
    return completion


def _handler_for(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints do

        def setup(self) -> None:
            super().setup()
            # Headers and body leave in two writes; with Nagle's algorithm the second waits for the
            # client's delayed ACK (~40 ms), which real servers do not add.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": "fault-model", "object": "model"}]})
            else:
                self._send(200, {"status": "ok"})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            # The completions endpoint sends a prompt: logged as one user message, answered as text.
            messages = body.get("messages") or [{"role": "user", "content": str(body.get("prompt", ""))}]
            hit, text = server.decide(
                messages, self.headers.get("authorization", ""), self.path, self.headers.get("api-key", "")
            )
            server.track(+1)
            try:
                self._act(hit, text, body, messages)
            finally:
                server.track(-1)

        def _act(self, hit: Hit, text: str, body: dict[str, Any], messages: list[dict[str, str]]) -> None:
            if server.delay_s:
                time.sleep(server.delay_s)
            if hit.action == "429":
                self._send(
                    429,
                    {"error": {"message": "rate limited", "type": "rate_limit"}},
                    {"Retry-After": server.retry_after},
                )
            elif hit.action in ("echo400", "echo401", "echo500"):
                status = int(hit.action.removeprefix("echo"))
                quoted = f"Authorization: {hit.authorization} api-key: {hit.api_key_header}"
                self._send(status, {"error": {"message": f"rejected request with headers {quoted}", "type": "echo"}})
            elif hit.action == "500":
                self._send(500, {"error": {"message": "internal error", "type": "server_error"}})
            elif hit.action == "400":
                self._send(400, {"error": {"message": "this request is never accepted", "type": "invalid_request"}})
            elif hit.action == "401":
                self._send(401, {"error": {"message": "incorrect API key provided", "type": "invalid_api_key"}})
            elif hit.action == "stall":
                time.sleep(server.stall_s)
                self._send(200, _completion(body.get("model", ""), text, len(str(messages))))
            elif hit.action == "badjson":
                self._send_raw(200, b'{"id": "chatcmpl-broken", "choices": [{"message": {"content": "4\\nfi')
            elif hit.action == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif "prompt" in body:
                self._send(200, _text_completion(body.get("model", ""), text, len(body["prompt"])))
            else:
                self._send(200, _completion(body.get("model", ""), text, len(str(messages))))

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            self._send_raw(status, json.dumps(payload).encode(), headers)

        def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a stalled answer past its timeout)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every call")
    args = parser.parse_args()
    server = FaultServer(delay_s=args.delay, port=args.port).start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
