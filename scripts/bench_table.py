#!/usr/bin/env python3
"""Prints the Markdown tables of BENCHMARKS.md from the JSON reports scripts/bench.sh wrote."""

import json
import os
import sys

out, players, publishers, servers = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
NAMES = {"ours": "this server", "ours0": "this server, zero-latency", "null": "null server",
         "nginx": "nginx-rtmp", "base": "this server, base build (BASE_BIN)"}


def name(server):
    # ours-N: this server with --write-coalesce Nms (scripts/bench.sh).
    if server.startswith("ours-"):
        return f"this server, {server[5:]} ms coalescing"
    return NAMES.get(server, server)


def load(server, kind, n):
    path = os.path.join(out, f"{server}-{kind}-{n}.json")
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return None


def load_avg(server, kind, n):
    try:
        with open(os.path.join(out, f"{server}-{kind}-{n}.load")) as f:
            return float(f.read().strip())
    except (OSError, ValueError):
        return None


def per_gbps_both(r):
    # On loopback the kernel charges TCP receive work to whichever side runs it, so the
    # server plus loadgen total is shown too.
    if r and r.get("delivered_gbps"):
        return (r["server_cpu_cores"] + r["loadgen_cpu_cores"]) / r["delivered_gbps"]
    return None


def ratio(a, b):
    return a / b if a and b else None


def num(v, fmt="{:.2f}"):
    return "-" if v is None else fmt.format(v)


# An empty list (PLAYERS= or PUBLISHERS= given empty) skips that table.
if players:
    print("| players | server | load | delivered Gbit/s | server CPU cores | CPU cores per Gbit/s | x null | x nginx | with loadgen, per Gbit/s | x nginx | RSS per player | join p50 / p99 ms | latency p50 / p99 ms | errors / missed frames |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in players:
        null = load("null", "players", n) or {}
        nginx = load("nginx", "players", n) or {}
        for s in servers:
            r = load(s, "players", n)
            if r is None:
                continue
            rss = r.get("rss_per_player")
            both = per_gbps_both(r)
            print(f"| {n} | {name(s)} | {num(load_avg(s, 'players', n), '{:.1f}')} | "
                  f"{num(r['delivered_gbps'], '{:.3f}')} | "
                  f"{num(r['server_cpu_cores'])} | {num(r['server_cpu_per_gbps'], '{:.3f}')} | "
                  f"{num(ratio(r.get('server_cpu_per_gbps'), null.get('server_cpu_per_gbps')))} | "
                  f"{num(ratio(r.get('server_cpu_per_gbps'), nginx.get('server_cpu_per_gbps')))} | "
                  f"{num(both, '{:.3f}')} | {num(ratio(both, per_gbps_both(nginx)))} | "
                  f"{num(None if rss is None else rss / 1024, '{:.1f} KiB')} | "
                  f"{num(r['join_ms']['p50'])} / {num(r['join_ms']['p99'])} | "
                  f"{num(r['latency_ms']['p50'])} / {num(r['latency_ms']['p99'])} | "
                  f"{r['errors']} / {r['missed_frames']} |")

if players and publishers:
    print()
if publishers:
    print("| publishers | server | load | server CPU cores | CPU cores per publisher | x nginx | RSS per publisher (stream) | publish errors |")
    print("|---|---|---|---|---|---|---|---|")
    for n in publishers:
        for s in servers:
            r = load(s, "publishers", n)
            if r is None:
                continue
            per = r["server_cpu_cores"] / max(r["publishers"], 1)
            ng = load("nginx", "publishers", n)
            ng_per = ng["server_cpu_cores"] / max(ng["publishers"], 1) if ng else None
            # Per stream from the servers' idle RSS (older reports: from 1 s after publishing).
            per_stream = r.get("rss_per_stream")
            if per_stream is None:
                per_stream = (r["server_rss_end"] - r["server_rss_base"]) / max(r["publishers"], 1)
            rss = per_stream / 1024
            print(f"| {n} | {name(s)} | {num(load_avg(s, 'publishers', n), '{:.1f}')} | "
                  f"{num(r['server_cpu_cores'])} | {num(per, '{:.4f}')} | {num(ratio(per, ng_per))} | "
                  f"{rss:.0f} KiB | {r['publish_errors']} |")
