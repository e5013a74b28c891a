#!/usr/bin/env python3
"""The Recommender: an external concept of LibraryCache's, written in Python with the standard
library only, to show that a concept served elsewhere needs nothing but HTTP and JSON.

It implements what concepts/Recommender.external.json declares:
  POST /recommender/recommend  {userId, likes}  -> {ticket}   (then calls back, see below)
  POST /recommender/_playlist  {ticket}         -> {name}
and raises its callback through LibraryCache's API:
  POST {LIBRARYCACHE_URL}/api/Recommender/recommended {userId, ticket, trackIds}
with `Authorization: Bearer {LIBRARYCACHE_TOKEN}` when a token is set.

A repeated call with the same Idempotency-Key (LibraryCache retries an idempotent call that
timed out) gets the same ticket, and is not worked on twice.

    python3 examples/external/recommender.py            # listens on 127.0.0.1:8765
"""

import hashlib
import json
import os
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LIBRARYCACHE_URL = os.environ.get("LIBRARYCACHE_URL", "http://127.0.0.1:5765")
LIBRARYCACHE_TOKEN = os.environ.get("LIBRARYCACHE_TOKEN", "")
PORT = int(os.environ.get("RECOMMENDER_PORT", "8765"))

seen = set()
seen_lock = threading.Lock()


def call_back(user_id, ticket, likes):
    """Raises Recommender.recommended in LibraryCache: a track 'like' each liked one."""
    body = {
        "userId": user_id,
        "ticket": ticket,
        "trackIds": ["similar-to:" + like["trackId"] for like in likes if "trackId" in like],
    }
    request = urllib.request.Request(
        LIBRARYCACHE_URL + "/api/Recommender/recommended",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if LIBRARYCACHE_TOKEN:
        request.add_header("Authorization", "Bearer " + LIBRARYCACHE_TOKEN)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            print("callback:", answer.status, answer.read().decode(), flush=True)
    except OSError as e:  # urllib's HTTPError and URLError, a refused connection
        detail = e.read().decode() if hasattr(e, "read") else ""
        print("callback failed:", e, detail, flush=True)


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length", "0"))
            data = json.loads(self.rfile.read(length) or b"{}")
        except ValueError as e:
            return self.answer(400, {"error": "the body is not JSON: %s" % e, "code": "MALFORMED_JSON"})
        key = self.headers.get("Idempotency-Key", "")
        if self.path == "/recommender/recommend":
            ticket = "rec-" + hashlib.sha256(key.encode()).hexdigest()[:12]
            self.answer(200, {"ticket": ticket})
            with seen_lock:
                first = key not in seen
                seen.add(key)
            if first:
                threading.Thread(
                    target=call_back, args=(data["userId"], ticket, data.get("likes", []))
                ).start()
        elif self.path == "/recommender/_playlist":
            self.answer(200, {"name": "Recommended for you"})
        else:
            self.answer(404, {"error": "no action at %s" % self.path, "code": "UNKNOWN_ACTION"})


if __name__ == "__main__":
    print("Recommender on http://127.0.0.1:%d/recommender" % PORT, flush=True)
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
