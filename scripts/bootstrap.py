"""Trunk post-build hook: the start-up code Trunk writes, without the two warnings it prints on every load.

- The worker's loader calls `wasm_bindgen("./worker_bg.wasm")`; wasm-bindgen 0.2.93 and later read
  their options as one object and warn that the bare path is deprecated. Trunk 0.21 writes the object
  form for the page but not for a worker's loader shim.
- The page's wasm is preloaded with `<link rel="preload" as="fetch" integrity=...>`. Browsers ignore
  Subresource Integrity on fetch preloads and say so in the console; wasm-bindgen's own fetch of the
  file carries none either, so the attribute protects nothing (the Content-Security-Policy that
  scripts/csp.py writes is what pins the page to its own origin). It is dropped.

Runs after strip_wasm.py, in every profile.
"""

import os
import re
import sys

staging = os.environ.get("TRUNK_STAGING_DIR", sys.argv[1] if len(sys.argv) > 1 else "dist")

loader = os.path.join(staging, "worker_loader.js")
text = open(loader, encoding="utf-8").read()
fixed, n = re.subn(r'wasm_bindgen\("(\./[^"]+\.wasm)"\)', r'wasm_bindgen({ module_or_path: "\1" })', text)
if n != 1 and "module_or_path" not in text:
    sys.exit(f"bootstrap.py: {loader} does not call wasm_bindgen with the wasm's path: {text[:200]!r}")
open(loader, "w", encoding="utf-8").write(fixed)

index = os.path.join(staging, "index.html")
html = open(index, encoding="utf-8").read()
preload = re.compile(r'<link rel="preload"[^>]*as="fetch"[^>]*>')
tags = preload.findall(html)
if len(tags) != 1:
    sys.exit(f"bootstrap.py: expected one fetch preload (the page's wasm) in {index}, found {len(tags)}")
html = html.replace(tags[0], re.sub(r'\s+integrity="[^"]*"', "", tags[0]))
open(index, "w", encoding="utf-8").write(html)
