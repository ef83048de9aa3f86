"""A timing reverse proxy for Label Studio: forwards every request unchanged and writes one
JSON line per request (method, path, status, start, seconds until the server's answer was
read in full, bytes each way), so a client's wall time can be split into time the server
was working for it and time spent in the client.

    python bench/proxy.py UPSTREAM_URL LOG.jsonl      prints the proxy's URL on stdout

Each client connection gets its own upstream connection (keep-alive on both sides), so the
proxy adds a memory copy, not a connection setup, per request.
"""

import http.client
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
       "trailer", "proxy-authorization", "proxy-authenticate"}


def main():
    upstream, log_path = urlsplit(sys.argv[1]), sys.argv[2]
    log = open(log_path, "a", buffering=1)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self):
            conn = getattr(self, "upstream", None)
            if conn is None:
                conn = self.upstream = http.client.HTTPConnection(
                    upstream.hostname, upstream.port, timeout=600)
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            t0 = time.time()
            p0 = time.perf_counter()
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            dur = time.perf_counter() - p0
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            with lock:
                log.write(json.dumps({"method": self.command, "path": self.path,
                                      "status": resp.status, "start": t0, "secs": dur,
                                      "req_bytes": n, "resp_bytes": len(data)}) + "\n")

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
