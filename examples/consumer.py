#!/usr/bin/env python3
"""Reads the media server's framed format (proto/FORMAT.md) on stdin and prints one line
per message: one per media frame, and lines for hello, announce, track configuration,
metadata, end of stream, events and the rest.

Written from FORMAT.md alone, with the standard library only, as a starting point for
consumers in any language:

    ingest-rtmp --listen 127.0.0.1:1935 --out - | python3 examples/consumer.py

Exits 0 at the end of the input, 1 on malformed input (with the reason on stderr).
"""

import struct
import sys

# Section 1: readers refuse larger prefixes before buffering anything.
MAX_HEADER = 64 * 1024
MAX_PAYLOAD = 32 * 1024 * 1024

ROLES = ["Publisher", "PlayerHandoff", "Subscriber", "Hub"]
REJECT_REASONS = ["Duplicate", "Capacity", "Denied"]
CODECS = ["H264", "H265", "H266", "Av1", "Vp9", "Vp8", "Aac", "Opus", "Flac", "Mp3",
          "Ac3", "Eac3", "LegacyVideo", "LegacyAudio", "Unknown"]


class Malformed(Exception):
    """The input does not follow FORMAT.md."""


class Reader:
    """Decodes bincode values (FORMAT.md section 2) from one header's bytes."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if n > len(self.data) - self.pos:
            raise Malformed(f"header ends {n - (len(self.data) - self.pos)} bytes early")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]

    def u8(self): return self.unpack("B")
    def u16(self): return self.unpack("H")
    def u32(self): return self.unpack("I")
    def u64(self): return self.unpack("Q")
    def i32(self): return self.unpack("i")
    def i64(self): return self.unpack("q")
    def f64(self): return self.unpack("d")

    def bool(self):
        b = self.u8()
        if b > 1:
            raise Malformed(f"bool byte {b}")
        return b == 1

    def string(self):
        n = self.u64()  # checked against what is left before it is used
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as e:
            raise Malformed(f"string is not UTF-8: {e}") from None

    def vec(self, item):
        n = self.u64()
        if n > len(self.data) - self.pos:  # every element takes at least one byte
            raise Malformed(f"vector of {n} elements in a {len(self.data)}-byte header")
        return [item() for _ in range(n)]

    def option(self, item):
        tag = self.u8()
        if tag > 1:
            raise Malformed(f"option tag {tag}")
        return item() if tag == 1 else None

    def enum_name(self, names, what):
        i = self.u32()
        if i >= len(names):
            raise Malformed(f"unknown {what} index {i}")
        return names[i]

    def codec(self):
        name = self.enum_name(CODECS, "codec")
        if name == "LegacyVideo":
            return f"LegacyVideo(codec_id={self.u8()})"
        if name == "LegacyAudio":
            return f"LegacyAudio(header=0x{self.u8():02x})"
        if name == "Unknown":
            video = self.bool()
            fourcc = self.take(4).decode("latin-1")
            return f"Unknown({'video' if video else 'audio'},{fourcc!r})"
        return name


def chunk_stream_state(r):
    return dict(csid=r.u32(), timestamp=r.u32(), delta=r.u32(), length=r.u32(),
                type_id=r.u8(), stream_id=r.u32(), extended=r.bool())


def player_session(r):
    return dict(conn_id=r.u64(), remote=r.string(), key=r.string(), stream_id=r.u32(),
                in_chunk_size=r.u32(), out_chunk_size=r.u32(), window_ack_size=r.u32(),
                bytes_received=r.u64(), last_ack_sent=r.u64(),
                in_chunk_streams=r.vec(lambda: chunk_stream_state(r)),
                pending_input=len(r.vec(r.u8)), start=r.f64(), duration=r.f64(),
                reset=r.bool(), receive_audio=r.bool(), receive_video=r.bool(),
                transaction_id=r.f64())


def describe(header, payload, streams):
    """One line for one message; `streams` maps handles to (key, timescale)."""
    r = Reader(header)
    variant = r.u32()
    if variant == 0:
        version, role, name = r.u16(), r.enum_name(ROLES, "role"), r.string()
        line = f"hello version={version} role={role} name={name}"
    elif variant == 1:
        stream, key, timescale = r.u32(), r.string(), r.u32()
        streams[stream] = (key, timescale)
        line = f"announce stream={stream} key={key} timescale={timescale}"
    elif variant == 2:
        stream = r.u32()
        rejected = r.option(lambda: r.enum_name(REJECT_REASONS, "reject reason"))
        line = f"announce-reply stream={stream} rejected={rejected}"
    elif variant == 3:
        stream, track, codec = r.u32(), r.u8(), r.codec()
        line = (f"config stream={stream} key={key_of(streams, stream)} track={track} "
                f"codec={codec} bytes={len(payload)}")
    elif variant == 4:
        stream, track, video = r.u32(), r.u8(), r.bool()
        dts, cts, flags = r.i64(), r.i32(), r.u8()
        _, timescale = streams.get(stream, ("?", 1000))
        ms = dts * 1000 / timescale if timescale else dts
        line = (f"frame stream={stream} track={track} {'video' if video else 'audio'} "
                f"dts={dts} cts={cts} ms={ms:.1f} key={int(bool(flags & 1))} "
                f"disposable={int(bool(flags & 2))} bytes={len(payload)}")
    elif variant == 5:
        stream = r.u32()
        line = f"metadata stream={stream} key={key_of(streams, stream)} bytes={len(payload)}"
    elif variant == 6:
        stream, reason = r.u32(), r.string()
        line = f"end stream={stream} key={key_of(streams, stream)} reason={reason}"
        streams.pop(stream, None)
    elif variant == 7:
        kind, key, conn_id, remote = r.string(), r.string(), r.u64(), r.string()
        fields = r.vec(lambda: (r.string(), r.string()))
        extra = " ".join(f"{k}={v}" for k, v in fields)
        line = f"event kind={kind} key={key} conn_id={conn_id} remote={remote} {extra}".rstrip()
    elif variant == 8:
        patterns, media, events = r.vec(r.string), r.bool(), r.bool()
        line = f"subscribe patterns={patterns} media={media} events={events}"
    elif variant == 9:
        s = player_session(r)
        line = f"player-handoff key={s['key']} conn_id={s['conn_id']} remote={s['remote']}"
    elif variant == 10:
        stream, frames, nbytes = r.u32(), r.u64(), r.u64()
        line = f"dropped stream={stream} frames={frames} bytes={nbytes}"
    elif variant == 11:
        stream, reason = r.u32(), r.string()
        line = f"revoke stream={stream} reason={reason}"
    elif variant == 12:
        line = f"error message={r.string()}"
    elif variant in (13, 14):
        stream, track, codec, dts = r.u32(), r.u8(), r.codec(), r.i64()
        what = "track-metadata" if variant == 13 else "end-of-sequence"
        line = (f"{what} stream={stream} key={key_of(streams, stream)} track={track} "
                f"codec={codec} dts={dts} bytes={len(payload)}")
    elif variant == 15:
        stream, track, codec = r.u32(), r.u8(), r.codec()
        line = (f"channel-config stream={stream} key={key_of(streams, stream)} track={track} "
                f"codec={codec} bytes={len(payload)}")
    elif variant == 16:
        stream, dts = r.u32(), r.i64()
        line = f"data stream={stream} key={key_of(streams, stream)} dts={dts} bytes={len(payload)}"
    elif variant == 17:
        stream, track, video, nanos = r.u32(), r.u8(), r.bool(), r.u32()
        line = (f"timestamp-offset stream={stream} track={track} "
                f"{'video' if video else 'audio'} nanos={nanos}")
    else:
        raise Malformed(f"unknown header variant {variant}")
    if r.pos != len(header):
        raise Malformed(f"{len(header) - r.pos} trailing header bytes")
    return line


def key_of(streams, stream):
    return streams.get(stream, ("?", 0))[0]


def read_exact(stream, n):
    """n bytes, or None at a clean end of input (before the first byte)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            if buf:
                raise Malformed(f"input ends inside a message ({len(buf)} of {n} bytes)")
            return None
        buf += chunk
    return bytes(buf)


def main():
    inp = sys.stdin.buffer
    streams = {}
    first = True
    try:
        while True:
            prefix = read_exact(inp, 8)
            if prefix is None:
                return 0
            header_len, payload_len = struct.unpack("<II", prefix)
            if header_len > MAX_HEADER or payload_len > MAX_PAYLOAD:
                raise Malformed(f"message too large (header {header_len}, payload {payload_len})")
            header = read_exact(inp, header_len) if header_len else b""
            payload = read_exact(inp, payload_len) if payload_len else b""
            if header is None or payload is None:
                raise Malformed("input ends inside a message")
            line = describe(header, payload, streams)
            if first and not line.startswith("hello "):
                raise Malformed("the first message is not Hello")
            first = False
            print(line, flush=True)
    except Malformed as e:
        print(f"consumer.py: malformed input: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
