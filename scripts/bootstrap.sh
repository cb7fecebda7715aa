#!/usr/bin/env bash
# Create (or bring up to date) the project's virtual environment in .venv, then the system libraries Qt needs.
# torch is installed first and pinned: torch==2.13.0 is a CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
# Every other package is resolved under constraints.txt (the lock: the versions of the last green environment;
# `make lock` rewrites it), so every machine and CI get the same packages.
# The system libraries (X11/xcb, PulseAudio… that PySide6's Qt links to) are checked by scripts/system_deps.py:
# installed with apt-get when run as root on Debian/Ubuntu, otherwise it stops with the command to run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${STUDIOLO_TORCH_SPEC:-torch==2.13.0}
CONSTRAINTS=${STUDIOLO_CONSTRAINTS:-constraints.txt}  # /dev/null resolves without the lock

if [ ! -x "$VENV/bin/python" ]; then
    echo "studiolo: creating $VENV (first run; this takes a few minutes, llama.cpp is compiled)" >&2
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c "$CONSTRAINTS" "$TORCH_SPEC"
# The gguf extra's llama-cpp-python has no Linux wheel on PyPI: pip compiles it (about 4 minutes on 2 cores, once;
# pip's wheel cache keeps it) and needs a C++ compiler (cmake comes from PyPI when the system has none).
if ! command -v c++ >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq g++
    else
        echo "studiolo: llama-cpp-python is compiled from source and needs a C++ compiler: sudo apt-get install g++" >&2
        exit 1
    fi
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c "$CONSTRAINTS" -e ".[all,test]"
# The image generator's invisible watermark (plugins/image/watermark.py). --no-deps: invisible-watermark's own
# requirements name opencv-python, a second OpenCV beside our opencv-python-headless (both own the cv2 package);
# what it really uses (numpy, PyWavelets, opencv-python-headless, Pillow, torch) is installed above.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c "$CONSTRAINTS" --no-deps \
    "invisible-watermark==0.2.0"
touch "$VENV/.studiolo-installed"  # the Python packages are in; the system libraries are checked on every run
"$VENV/bin/python" scripts/system_deps.py
echo "studiolo: environment ready in $VENV" >&2
