#!/usr/bin/env python3
"""Fake OpenAI-compatible chat server for tests/data/test_captioners.c (standard library only).

Usage: fake_llm_server.py LOGFILE
Listens on 127.0.0.1 (loopback only) on a free port and prints "PORT <n>" on stdout.
Every request is appended to LOGFILE as one JSON line {"path", "auth", "body"} before it is
answered, so the test can count attempts and inspect what was sent.  The first path
segment picks the behaviour:
  /ok/...         200, a proper chat completion whose content echoes the user message
  /err500/...     500 with an OpenAI-style error body
  /flaky/...      503, then 429 (Retry-After: 0), then like /ok (counted per server)
  /malformed/...  200 with a body that is not JSON
  /nocontent/...  200 with "choices": []
  /hang/...       sleeps 8 s before answering (past the test's timeout)
  /redirect/...   302 to /ok/... (must not be followed)
  /auth/...       like /ok if "Authorization: Bearer sekrit", else 401
The server exits when its stdin reaches end of file (the test, or the test's death,
closes it), on SIGTERM, or after 120 s at most.
"""
import http.server
import json
import os
import sys
import threading
import time

LOG = sys.argv[1]
LOCK = threading.Lock()
COUNTS = {}


def completion(user):
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "  INSTR: " + user + "\n"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep the test output clean
        pass

    def send(self, code, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n).decode("utf-8", "replace")
        mode = self.path.strip("/").split("/", 1)[0]
        with LOCK:
            with open(LOG, "a") as f:
                f.write(json.dumps({"path": self.path, "auth": self.headers.get("Authorization"), "body": raw}) + "\n")
            COUNTS[mode] = COUNTS.get(mode, 0) + 1
            count = COUNTS[mode]
        try:
            user = [m["content"] for m in json.loads(raw)["messages"] if m["role"] == "user"][0]
        except Exception:
            user = "?"
        if mode == "ok":
            self.send(200, completion(user))
        elif mode == "err500":
            self.send(500, {"error": {"message": "boom", "type": "server_error"}})
        elif mode == "flaky":
            if count == 1:
                self.send(503, {"error": {"message": "loading model"}})
            elif count == 2:
                self.send(429, {"error": {"message": "slow down"}}, [("Retry-After", "0")])
            else:
                self.send(200, completion(user))
        elif mode == "malformed":
            self.send(200, b'{"choices": [ this is not json')
        elif mode == "nocontent":
            self.send(200, {"id": "x", "choices": []})
        elif mode == "hang":
            time.sleep(8)
            self.send(200, completion(user))
        elif mode == "redirect":
            self.send(302, b"", [("Location", "/ok/v1/chat/completions")])
        elif mode == "auth":
            if self.headers.get("Authorization") == "Bearer sekrit":
                self.send(200, completion(user))
            else:
                self.send(401, {"error": {"message": "bad key"}})
        else:
            self.send(404, {"error": {"message": "no such mode " + mode}})


def main():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.stdout.write("PORT %d\n" % srv.server_address[1])
    sys.stdout.flush()
    # exit with the test: end of stdin, or the 120 s cap, whichever comes first
    t = threading.Thread(target=lambda: sys.stdin.read(), daemon=True)
    t.start()
    t.join(120)
    os._exit(0)


if __name__ == "__main__":
    main()
