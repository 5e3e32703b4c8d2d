"""Trunk post-build hook: pins the page to its own origin with a Content-Security-Policy.

Trunk writes the app's bootstrap as an inline module script; instead of allowing inline scripts in
general, the policy allows exactly that script by its SHA-256. Workers, data and wasm come from the
page's own origin; nothing may be fetched from anywhere else.
"""

import base64
import hashlib
import os
import re
import sys

path = os.path.join(os.environ.get("TRUNK_STAGING_DIR", sys.argv[1] if len(sys.argv) > 1 else "dist"), "index.html")
html = open(path, encoding="utf-8").read()
scripts = re.findall(r"<script(?:\s[^>]*)?>(.*?)</script>", html, flags=re.S)
if not scripts:
    sys.exit(f"csp.py: no inline script found in {path}")
hashes = " ".join(
    "'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'" for s in scripts
)
policy = "; ".join(
    [
        "default-src 'self'",
        f"script-src 'self' 'wasm-unsafe-eval' {hashes}",
        "worker-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data: blob:",
        # Leptos and plotters set style attributes (bar widths, SVG text); style sheets stay same-origin.
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'none'",
    ]
)
meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}" />'
html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>\s*', "", html)
html = html.replace('<meta charset="utf-8" />', '<meta charset="utf-8" />\n    ' + meta, 1)
if meta not in html:
    sys.exit(f'csp.py: {path} has no <meta charset="utf-8" /> to put the policy after')
open(path, "w", encoding="utf-8").write(html)
