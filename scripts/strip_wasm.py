"""Trunk post-build hook: drops the `name` and `producers` custom sections from both wasm files.

They only serve debuggers (function names in stack traces) and are ~20 % of the download. Trunk's
integrity hash on the page's wasm preload no longer matches the stripped bytes; scripts/bootstrap.py,
which runs next, drops that attribute (browsers ignore it on fetch preloads). Skipped in debug builds,
where the names are worth having.
"""

import os
import sys

DROP = {b"name", b"producers"}


def leb128(data, i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def strip(path):
    data = open(path, "rb").read()
    if data[:4] != b"\0asm":
        sys.exit(f"strip_wasm.py: {path} is not a wasm module")
    out, i = bytearray(data[:8]), 8
    while i < len(data):
        start = i
        section_id = data[i]
        size, body = leb128(data, i + 1)
        end = body + size
        if section_id == 0:
            name_len, name_at = leb128(data, body)
            if data[name_at : name_at + name_len] in DROP:
                i = end
                continue
        out += data[start:end]
        i = end
    open(path, "wb").write(out)
    print(f"strip_wasm.py: {os.path.basename(path)} {len(data)} -> {len(out)} bytes")
    return bytes(out)


if os.environ.get("TRUNK_PROFILE", "release") == "release":
    staging = os.environ.get("TRUNK_STAGING_DIR", sys.argv[1] if len(sys.argv) > 1 else "dist")
    strip(os.path.join(staging, "worker_bg.wasm"))
    strip(os.path.join(staging, "backdoor-lab_bg.wasm"))
