#!/usr/bin/env python3
"""Opens the hub's status page in headless Chromium through ChromeDriver's WebDriver
protocol (standard library only) and checks what a viewer gets: the stream is listed,
its player plays (the video's currentTime advances, decoded frames are reported by
getVideoPlaybackQuality()), and the browser console has no errors.

Usage: browser_check.py PAGE_URL STREAM_KEY CHROMEDRIVER_PORT
Prints one JSON line with what it saw; exits 0 when every check passed, 1 otherwise.
"""
import json
import sys
import tempfile
import time
import urllib.request

page, key, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = "http://127.0.0.1:%d" % port


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"{}").get("value")


profile = tempfile.mkdtemp(prefix="chromium-profile-")
caps = {
    "capabilities": {
        "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                # As root in a sandbox-less container, with no network but loopback.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         "--autoplay-policy=no-user-gesture-required",
                         "--user-data-dir=" + profile],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }
    }
}
session = call("POST", "/session", caps)["sessionId"]
seen = {"listed": False, "current_time": [], "frames": 0, "console_errors": []}
ok = False
try:
    call("POST", "/session/%s/url" % session, {"url": page})
    deadline = time.time() + 45
    script = """
        const key = arguments[0];
        const row = document.querySelector('tr[data-key="' + key + '"]');
        const video = document.querySelector('video[data-key="' + key + '"]');
        const q = video && video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
        return {
            listed: !!row,
            cells: row ? Array.from(row.cells).map(c => c.textContent) : [],
            time: video ? video.currentTime : -1,
            frames: q ? q.totalVideoFrames : 0,
            error: video && video.error ? video.error.message || String(video.error.code) : null,
        };
    """
    while time.time() < deadline:
        v = call("POST", "/session/%s/execute/sync" % session, {"script": script, "args": [key]})
        seen["listed"] = seen["listed"] or v["listed"]
        seen["cells"] = v["cells"]
        seen["current_time"].append(v["time"])
        seen["frames"] = v["frames"]
        seen["video_error"] = v["error"]
        times = [t for t in seen["current_time"] if t > 0]
        if seen["listed"] and len(times) >= 2 and times[-1] >= times[0] + 2.0 and v["frames"] >= 20:
            ok = True
            break
        time.sleep(0.5)
    logs = call("POST", "/session/%s/se/log" % session, {"type": "browser"}) or []
    seen["console_errors"] = [l["message"] for l in logs if l.get("level") == "SEVERE"]
    ok = ok and not seen["console_errors"]
finally:
    call("DELETE", "/session/%s" % session)
seen["current_time"] = seen["current_time"][-5:]
print(json.dumps(seen))
sys.exit(0 if ok else 1)
