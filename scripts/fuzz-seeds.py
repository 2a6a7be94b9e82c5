#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from the repository's test captures and rules.

usage: fuzz-seeds.py OUT_DIR
Writes OUT_DIR/payloads (transport payloads, for the parsers), OUT_DIR/frames (link-layer
frames), OUT_DIR/sequences (frames of one capture, each prefixed by a 2-byte length, for the
flow target), OUT_DIR/files (small whole capture files) and OUT_DIR/rules (the shipped packs).
Classic pcap with Ethernet or raw-IP frames is read; other files are used whole where they fit.
"""
import hashlib, os, pathlib, struct, sys

root = pathlib.Path(__file__).resolve().parent.parent
out = pathlib.Path(sys.argv[1])
for d in ("payloads", "frames", "sequences", "files", "rules"):
    (out / d).mkdir(parents=True, exist_ok=True)

def put(kind, data):
    if data:
        (out / kind / hashlib.sha1(data).hexdigest()).write_bytes(data)

def frames_of(blob):
    if len(blob) < 24:
        return None, []
    magic = blob[:4]
    if magic == b"\xd4\xc3\xb2\xa1" or magic == b"\x4d\x3c\xb2\xa1":
        end = "<"
    elif magic == b"\xa1\xb2\xc3\xd4" or magic == b"\xa1\xb2\x3c\x4d":
        end = ">"
    else:
        return None, []
    link = struct.unpack(end + "I", blob[20:24])[0]
    at, frames = 24, []
    while at + 16 <= len(blob) and len(frames) < 400:
        incl = struct.unpack(end + "I", blob[at + 8:at + 12])[0]
        frames.append(blob[at + 16:at + 16 + incl])
        at += 16 + incl
    return link, frames

def payload(link, frame):
    ip = frame[14:] if link == 1 else frame
    if link == 1 and frame[12:14] == b"\x81\x00":
        ip = frame[18:]
    if len(ip) < 20:
        return b""
    if ip[0] >> 4 == 4:
        ihl, proto = (ip[0] & 15) * 4, ip[9]
        l4 = ip[ihl:]
    elif ip[0] >> 4 == 6:
        proto, l4 = ip[6], ip[40:]
    else:
        return b""
    if proto == 17:
        return l4[8:]
    if proto == 6 and len(l4) >= 20:
        return l4[(l4[12] >> 4) * 4:]
    return b""

for cap in sorted((root / "tests" / "data").rglob("*")):
    if cap.suffix not in (".pcap", ".pcapng") or not cap.is_file():
        continue
    blob = cap.read_bytes()
    if len(blob) <= 64 * 1024:
        put("files", blob)
    link, frames = frames_of(blob)
    if link not in (1, 101):
        continue
    seq = b""
    for f in frames:
        put("frames", f)
        put("payloads", payload(link, f))
        if link == 1 and len(seq) < 32 * 1024:
            seq += struct.pack(">H", len(f)) + f
    put("sequences", seq)

for pack in sorted((root / "rules").rglob("*.yaml")):
    put("rules", pack.read_bytes())
print(" ".join(f"{d}={len(os.listdir(out / d))}" for d in sorted(os.listdir(out))))
