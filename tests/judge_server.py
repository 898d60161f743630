"""A loopback OpenAI-compatible judge: chat and completions endpoints, answering like the three judges.

It reads the two answers out of the judge's own prompt (Vicuna, Zheng or PandaLM shape), scores each
(``@score=N`` inside an answer forces its score; otherwise longer answers score higher, 1-10) and replies
in that judge's format. Faults are chosen by markers anywhere in the prompt, for the first N attempts
of that exact request (so a retry can succeed):

    @429xN  429 with Retry-After     @500xN  500     @badjsonxN  a truncated body
    @garble a review with no verdict in it (every attempt)

``bias_first`` adds points to the answer shown first (a position-biased judge). Every request is logged.
Run as a script for benchmarks: ``python tests/judge_server.py --port 8124 --delay 0.2``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

_FAULT = re.compile(r"@(429|500|badjson)x(\d+)")
_SCORE = re.compile(r"@score=(\d+(?:\.\d+)?)")
_VICUNA = re.compile(r"Assistant 1's Answer\]\n(.*?)\n\n\[The End of Assistant 1's Answer\].*?"
                     r"Assistant 2's Answer\]\n(.*?)\n\n\[The End of Assistant 2's Answer\]", re.DOTALL)
_ZHENG = re.compile(r"Assistant A's Answer\]\n(.*?)\n\[The End of Assistant A's Answer\].*?"
                    r"Assistant B's Answer\]\n(.*?)\n\[The End of Assistant B's Answer\]", re.DOTALL)
_PANDALM = re.compile(r"### Response 1:\n(.*?)\n\n### Response 2:\n(.*?)\n\n### Evaluation:", re.DOTALL)


@dataclass(frozen=True)
class Hit:
    key: str
    attempt: int
    action: str
    path: str
    text: str


class JudgeServer:
    def __init__(self, delay_s: float = 0.0, bias_first: float = 0.0, retry_after: str = "0", port: int = 0) -> None:
        self.delay_s = delay_s
        self.bias_first = bias_first
        self.retry_after = retry_after
        self.hits: list[Hit] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="judge-server", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> JudgeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def calls(self, path_part: str = "") -> int:
        with self._lock:
            return sum(1 for hit in self.hits if path_part in hit.path)

    def decide(self, text: str, path: str) -> Hit:
        key = hashlib.sha256(f"{path}\x00{text}".encode()).hexdigest()
        with self._lock:
            attempt = self._attempts[key] = self._attempts.get(key, 0) + 1
            action = "ok"
            for kind, count in _FAULT.findall(text):
                if attempt <= int(count):
                    action = kind
                    break
            hit = Hit(key, attempt, action, path, text)
            self.hits.append(hit)
        return hit

    def track(self, change: int) -> None:
        with self._lock:
            self.in_flight += change
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def review(self, text: str) -> str:
        """The judge's reply in the shape its prompt asks for."""
        if "@garble" in text:
            return "Both answers have their merits and I enjoyed reading them.\nHard to say more."
        for pattern, reply in ((_PANDALM, _pandalm_reply), (_ZHENG, _zheng_reply), (_VICUNA, _vicuna_reply)):
            match = pattern.search(text)
            if match:
                first, second = _score(match.group(1)) + self.bias_first, _score(match.group(2))
                return reply(min(first, 10.0), second)
        return "I cannot tell what is being asked."


def _score(answer: str) -> float:
    forced = _SCORE.search(answer)
    if forced:
        return float(forced.group(1))
    return float(min(10, 1 + len(answer.split()) // 3))


def _vicuna_reply(first: float, second: float) -> str:
    return f"{first:g} {second:g}\nAssistant 1 scored {first:g} and Assistant 2 scored {second:g} on detail."


def _zheng_reply(first: float, second: float) -> str:
    verdict = "[[A]]" if first > second else ("[[B]]" if second > first else "[[C]]")
    return f"Comparing both responses, the more detailed one is better.\n\n{verdict}"


def _pandalm_reply(first: float, second: float) -> str:
    verdict = "1" if first > second else ("2" if second > first else "Tie")
    return f"{verdict}\n\n### Reason: one response has more detail.\n\n### Reference: A reference answer.</s>"


def _handler_for(server: JudgeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            chat = "messages" in body
            text = "\n".join(str(m.get("content", "")) for m in body.get("messages", [])) if chat else str(body.get("prompt", ""))
            hit = server.decide(text, self.path)
            server.track(+1)
            try:
                if server.delay_s:
                    time.sleep(server.delay_s)
                self._act(hit, body, text, chat)
            finally:
                server.track(-1)

        def _act(self, hit: Hit, body: dict[str, Any], text: str, chat: bool) -> None:
            if hit.action == "429":
                self._send(429, {"error": {"message": "rate limited"}}, {"Retry-After": server.retry_after})
            elif hit.action == "500":
                self._send(500, {"error": {"message": "internal error"}})
            elif hit.action == "badjson":
                self._send_raw(200, b'{"id": "broken", "choices": [{"message": {"content": "8 7\\nfi')
            else:
                reply = server.review(text)
                choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
                if chat:
                    choice["message"] = {"role": "assistant", "content": reply}
                else:
                    choice["text"] = reply
                usage = {"prompt_tokens": len(text) // 4, "completion_tokens": len(reply) // 4,
                         "total_tokens": (len(text) + len(reply)) // 4}
                self._send(200, {"id": "judge", "object": "chat.completion" if chat else "text_completion",
                                 "created": int(time.time()), "model": body.get("model", ""),
                                 "choices": [choice], "usage": usage})

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
                pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every call")
    args = parser.parse_args()
    server = JudgeServer(delay_s=args.delay, port=args.port).start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
