"""Steady traffic for the example service: random users at a fixed rate,
as real traffic would arrive, so that both arms of a canary see requests.

    python load.py --url http://127.0.0.1:8000 --rps 40 [--seconds 300] [--log]

With --log it prints one JSON line per answer: when it arrived (`t_ms`,
Unix milliseconds), the user, the variant and digest that served it, and
the HTTP status. Standard library only.
"""

import argparse
import http.client
import json
import random
import sys
import threading
import time
from urllib.parse import urlparse


def worker(host, port, interval, until, users, log, lock, seed):
    rng = random.Random(seed)
    conn = None
    next_at = time.monotonic() + rng.random() * interval
    while time.monotonic() < until:
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += interval
        user = f"user-{rng.randrange(users)}"
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", f"/predict?user={user}&text=ticket+{rng.randrange(1000)}")
            answer = conn.getresponse()
            body = json.loads(answer.read() or b"{}")
            status = answer.status
        except (OSError, http.client.HTTPException, ValueError) as e:
            conn = None
            body, status = {"error": str(e)}, 0
        if log:
            line = json.dumps(
                {
                    "t_ms": int(time.time() * 1000),
                    "user": user,
                    "variant": body.get("variant"),
                    "digest": body.get("digest"),
                    "status": status,
                }
            )
            with lock:
                print(line, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--rps", type=float, default=40.0, help="requests per second, in all")
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--log", action="store_true", help="print a JSON line per answer")
    args = parser.parse_args()
    url = urlparse(args.url)
    until = time.monotonic() + args.seconds
    interval = args.workers / args.rps
    lock = threading.Lock()
    threads = [
        threading.Thread(
            target=worker,
            args=(url.hostname, url.port or 80, interval, until, args.users, args.log, lock, i),
            daemon=True,
        )
        for i in range(args.workers)
    ]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
