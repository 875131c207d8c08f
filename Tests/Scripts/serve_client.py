#!/usr/bin/env python3
"""A client for `megatron serve` tests: waits until URL accepts connections (up to --wait seconds),
then sends each request of REQUESTS (a JSON list; an entry is a JSON value sent as the body, or
{"raw": "…"} sent as it is) with PUT, all at once on threads when --parallel, and prints one JSON
list of {"status": N, "body": parsed JSON or text}."""
import argparse
import json
import threading
import time
import urllib.error
import urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("requests")
parser.add_argument("--wait", type=float, default=90)
parser.add_argument("--parallel", action="store_true")
args = parser.parse_args()


def put(body):
    request = urllib.request.Request(args.url, data=body, method="PUT", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return {"status": status, "body": json.loads(text)}
    except ValueError:
        return {"status": status, "body": text}


deadline = time.time() + args.wait
while True:
    try:
        put(b"{}")
        break
    except (urllib.error.URLError, ConnectionError):
        if time.time() > deadline:
            raise SystemExit(f"no server at {args.url} after {args.wait} s")
        time.sleep(0.2)

bodies = [e["raw"].encode() if isinstance(e, dict) and "raw" in e else json.dumps(e).encode()
          for e in json.load(open(args.requests))]
results = [None] * len(bodies)
if args.parallel:
    def work(i):
        results[i] = put(bodies[i])
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
else:
    results = [put(b) for b in bodies]
print(json.dumps(results))
