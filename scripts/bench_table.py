#!/usr/bin/env python3
"""Prints the Markdown tables of BENCHMARKS.md from the JSON reports scripts/bench.sh wrote."""

import json
import os
import sys

out, players, publishers, servers = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
NAMES = {"ours": "this server", "null": "null server", "nginx": "nginx-rtmp"}


def load(server, kind, n):
    path = os.path.join(out, f"{server}-{kind}-{n}.json")
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return None


def num(v, fmt="{:.2f}"):
    return "-" if v is None else fmt.format(v)


print("| players | server | delivered Gbit/s | server CPU cores | CPU cores per Gbit/s | x null | with loadgen, per Gbit/s | RSS per player | join p50 / p99 ms | latency p50 / p99 ms | errors / missed frames |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for n in players:
    null = load("null", "players", n)
    for s in servers:
        r = load(s, "players", n)
        if r is None:
            continue
        ratio = None
        if null and null.get("server_cpu_per_gbps") and r.get("server_cpu_per_gbps"):
            ratio = r["server_cpu_per_gbps"] / null["server_cpu_per_gbps"]
        rss = r.get("rss_per_player")
        # On loopback the kernel charges TCP receive work to whichever side runs it, so
        # the server plus loadgen total is shown too.
        both = None
        if r.get("delivered_gbps"):
            both = (r["server_cpu_cores"] + r["loadgen_cpu_cores"]) / r["delivered_gbps"]
        print(f"| {n} | {NAMES.get(s, s)} | {num(r['delivered_gbps'], '{:.3f}')} | "
              f"{num(r['server_cpu_cores'])} | {num(r['server_cpu_per_gbps'], '{:.3f}')} | "
              f"{num(ratio)} | {num(both, '{:.3f}')} | "
              f"{num(None if rss is None else rss / 1024, '{:.1f} KiB')} | "
              f"{num(r['join_ms']['p50'])} / {num(r['join_ms']['p99'])} | "
              f"{num(r['latency_ms']['p50'])} / {num(r['latency_ms']['p99'])} | "
              f"{r['errors']} / {r['missed_frames']} |")

print()
print("| publishers | server | server CPU cores | CPU cores per publisher | RSS per publisher | publish errors |")
print("|---|---|---|---|---|---|")
for n in publishers:
    for s in servers:
        r = load(s, "publishers", n)
        if r is None:
            continue
        per = r["server_cpu_cores"] / max(r["publishers"], 1)
        rss = (r["server_rss_end"] - r["server_rss_base"]) / max(r["publishers"], 1) / 1024
        print(f"| {n} | {NAMES.get(s, s)} | {num(r['server_cpu_cores'])} | {num(per, '{:.4f}')} | "
              f"{rss:.0f} KiB | {r['publish_errors']} |")
