#!/usr/bin/env bash
# Create (or bring up to date) the project's virtual environment in .venv.
# torch is installed first and pinned: torch==2.13.0 is a CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${STUDIOLO_TORCH_SPEC:-torch==2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
    echo "studiolo: creating $VENV (first run; this takes a few minutes)" >&2
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$TORCH_SPEC"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[all,test]"
touch "$VENV/.studiolo-installed"
echo "studiolo: environment ready in $VENV" >&2
