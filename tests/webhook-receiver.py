#!/usr/bin/env python3
"""A webhook receiver for the daemon's alert tests (t6011).

Usage: webhook-receiver.py OUT PORTFILE

Listens on 127.0.0.1 on a free port, writes the port to PORTFILE, and
appends the body of every POST to OUT as one line (JSON bodies are
re-serialised compactly, so each alert is exactly one line). Answers 204.
"""
import http.server
import json
import os
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        try:
            line = json.dumps(json.loads(body), sort_keys=True)
        except ValueError:
            line = json.dumps({"not_json": body.decode("utf-8", "replace")})
        with open(sys.argv[1], "a", encoding="utf-8") as f:
            f.write(line + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, fmt, *args):
        pass


def main():
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, sys.argv[2])
    server.serve_forever()


if __name__ == "__main__":
    main()
