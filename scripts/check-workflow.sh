#!/usr/bin/env bash
# Checks the deployment workflow: against GitHub's workflow schema (check-jsonschema's vendored copy,
# read offline) and against the README's commands (scripts/check_workflow.py). The checker lives in its
# own virtual environment beside the build cache, installed once from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${BDL_TOOLS_VENV:-$HOME/.cache/backdoor-lab/venv-tools}"
if [ ! -x "$venv/bin/check-jsonschema" ]; then
    echo "==> installing check-jsonschema 0.39.0 into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check check-jsonschema==0.39.0
fi
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml
"$venv/bin/python" scripts/check_workflow.py .github/workflows/pages.yml
