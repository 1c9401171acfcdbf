#!/usr/bin/env python3
"""scripts/report-load-time.py PORT PAGE PROFILE_DIR: load PAGE (a local HTML file) five times
in headless Chromium through a chromedriver already listening on 127.0.0.1:PORT; print the
median, min and max of Navigation Timing's navigationStart -> loadEventEnd, in ms.
Used by scripts/bench-report; standard library only."""
import json, statistics, sys, time, urllib.request
port, page, profile = sys.argv[1], sys.argv[2], sys.argv[3]
base = f"http://127.0.0.1:{port}"
def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)["value"]
for _ in range(100):
    try:
        if call("GET", "/status")["ready"]:
            break
    except OSError:
        pass
    time.sleep(0.1)
args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
sid = call("POST", "/session", {"capabilities": {"alwaysMatch": {"browserName": "chrome",
      "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}})["sessionId"]
times = []
try:
    for _ in range(5):
        call("POST", f"/session/{sid}/url", {"url": "about:blank"})
        call("POST", f"/session/{sid}/url", {"url": "file://" + page})
        t = call("POST", f"/session/{sid}/execute/sync", {"args": [], "script":
                 "var t=performance.timing;return t.loadEventEnd-t.navigationStart;"})
        times.append(t)
finally:
    call("DELETE", f"/session/{sid}")
print(f"{statistics.median(times)} {min(times)} {max(times)}")
