"""The deployment workflow builds what the README's commands build, and publishes that.

GitHub's schema (check-jsonschema) says the file is a valid workflow; this says it is the right one:
the site comes from the README's test command (which runs `trunk build --release`, the build
`scripts/serve.sh` serves) with the tools `scripts/setup-web.sh` pins, not from a second recipe that
could drift, and the folder it publishes is that build's `dist/`.
"""

import sys

from ruamel.yaml import YAML

path = sys.argv[1] if len(sys.argv) > 1 else ".github/workflows/pages.yml"
wf = YAML(typ="safe").load(open(path, encoding="utf-8"))
problems = []
jobs = wf.get("jobs", {})
build = jobs.get("build", {})
steps = build.get("steps", [])
runs = [s.get("run", "") for s in steps]
uses = [s.get("uses", "") for s in steps]

if not any(r.strip() == "bash scripts/test.sh" for r in runs):
    problems.append("the build job does not run the README's test command, `bash scripts/test.sh`")
# Tools and builds come from the repository's scripts only.
for r in runs:
    for word in ("trunk ", "cargo install", "wasm-bindgen", "rustup "):
        if word in r:
            problems.append(f"a step runs `{word.strip()}` itself: {r.strip()!r} (scripts/setup-web.sh and test.sh do)")
upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
if len(upload) != 1 or upload[0].get("with", {}).get("path") != "dist":
    problems.append("the build job must upload exactly `dist` with actions/upload-pages-artifact")
elif steps.index(upload[0]) < next((i for i, r in enumerate(runs) if r.strip() == "bash scripts/test.sh"), len(steps)):
    problems.append("the site is uploaded before the tests pass")
deploy = jobs.get("deploy", {})
if deploy.get("needs") != "build" or not any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy.get("steps", [])):
    problems.append("a deploy job that needs the build and runs actions/deploy-pages is missing")
if deploy.get("permissions", {}).get("pages") != "write" or deploy.get("permissions", {}).get("id-token") != "write":
    problems.append("the deploy job needs pages: write and id-token: write")
if not any(u.startswith("actions/cache@") for u in uses):
    problems.append("the build is not cached")

if problems:
    sys.exit(f"{path}:\n  " + "\n  ".join(problems))
print(f"{path}: builds with the README's commands and publishes dist/")
