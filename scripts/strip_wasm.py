"""Trunk post-build hook: drops the `name` and `producers` custom sections from both wasm files.

They only serve debuggers (function names in stack traces) and are ~20 % of the download. Trunk has
already pinned the page's wasm with a Subresource Integrity hash in index.html, so the hook re-pins it
to the stripped bytes (the worker's wasm is fetched by wasm-bindgen without one). Skipped in debug
builds, where the names are worth having.
"""

import base64
import hashlib
import os
import re
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


def repin(index_path, file_name, data):
    """Rewrites the integrity attribute of the tag that loads `file_name` to match `data`."""
    html = open(index_path, encoding="utf-8").read()
    digest = "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
    tag = re.compile(r'<link[^>]*href="\./' + re.escape(file_name) + r'"[^>]*>')
    found = tag.findall(html)
    if len(found) != 1:
        sys.exit(f"strip_wasm.py: expected one tag loading {file_name} in {index_path}, found {len(found)}")
    fixed, count = re.subn(r'integrity="sha384-[^"]*"', f'integrity="{digest}"', found[0])
    if count != 1:
        sys.exit(f"strip_wasm.py: the tag loading {file_name} has no sha384 integrity to update")
    open(index_path, "w", encoding="utf-8").write(html.replace(found[0], fixed))


if os.environ.get("TRUNK_PROFILE", "release") == "release":
    staging = os.environ.get("TRUNK_STAGING_DIR", sys.argv[1] if len(sys.argv) > 1 else "dist")
    strip(os.path.join(staging, "worker_bg.wasm"))
    page = "backdoor-lab_bg.wasm"
    repin(os.path.join(staging, "index.html"), page, strip(os.path.join(staging, page)))
