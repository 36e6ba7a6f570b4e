#!/usr/bin/env python3
"""Reads hookd's event stream (one JSON object per line) and prints who is live.

    hookd --stdout | python3 examples/hookd_events.py

Each line is {"kind", "key", "conn_id", "remote", "id", "time_ms", "seq", "fields": {...}}
(proto/FORMAT.md section 3.1 lists every kind and field).
"""

import json
import sys


def main() -> None:
    live = {}
    last_seq = {}
    for line in sys.stdin:
        event = json.loads(line)
        key, kind, fields = event["key"], event["kind"], event["fields"]
        seq = event.get("seq")
        # seq counts per key from 1; it restarts at 1 when the hub restarts.
        if key in last_seq and seq not in (last_seq[key] + 1, 1):
            print(f"# {key}: events {last_seq[key] + 1}..{seq - 1} missed", flush=True)
        last_seq[key] = seq
        if kind == "publish":
            live[key] = fields
            size = f"{fields.get('width', '?')}x{fields.get('height', '?')}"
            print(f"LIVE {key} {fields.get('video_codec', '-')}/{fields.get('audio_codec', '-')} {size}", flush=True)
        elif kind == "unpublish":
            live.pop(key, None)
            secs = int(fields.get("duration_ms", "0")) / 1000
            print(f"DONE {key} after {secs:.1f}s ({fields.get('reason')})", flush=True)
        elif kind in ("play", "stop"):
            print(f"{kind.upper()} {key} {event['remote']} {fields.get('bytes', '')}", flush=True)
        elif kind == "record_done":
            print(f"FILE {fields.get('path')} {fields.get('bytes')} bytes", flush=True)
    print(f"# stream ended; live at the end: {sorted(live)}", flush=True)


if __name__ == "__main__":
    main()
