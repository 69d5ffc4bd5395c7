#!/usr/bin/env bash
# Create or update the development environment: .venv (Python 3.11) and node_modules (WebGazer).
# Idempotent and quick when everything is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
TORCH_VERSION="2.13.0"

if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
    .venv/bin/pip install --upgrade pip
fi

# torch first and on its own: the CPU build must be in place before anything in
# requirements.txt (transformers, accelerate) can ask pip for some other torch.
installed_torch="$(.venv/bin/pip show torch 2>/dev/null | sed -n 's/^Version: //p' || true)"
if [ "${installed_torch%%+*}" != "$TORCH_VERSION" ]; then
    echo "==> installing torch==$TORCH_VERSION"
    .venv/bin/pip install "torch==$TORCH_VERSION"
fi

echo "==> installing requirements.txt"
.venv/bin/pip install --quiet -r requirements.txt

installed_torch="$(.venv/bin/pip show torch | sed -n 's/^Version: //p')"
if [ "${installed_torch%%+*}" != "$TORCH_VERSION" ]; then
    echo "error: torch $installed_torch was installed instead of $TORCH_VERSION" >&2
    exit 1
fi

# npm ci is a clean reinstall (slow, ~400 MB): skip it while node_modules matches the lock.
if [ -f package-lock.json ]; then
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        echo "==> npm ci"
        npm ci --no-audit --no-fund
    fi
else
    echo "==> npm install (no package-lock.json yet)"
    npm install --no-audit --no-fund
fi
# Browser tests drive Debian's Chromium through Playwright (never `playwright install`: no
# downloads at test time). CI runs as root on a fresh clone.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        echo "==> apt-get install chromium"
        apt-get update -qq && apt-get install -y -qq chromium fonts-liberation >/dev/null
    else
        echo "warning: /usr/bin/chromium is missing; browser tests will be skipped (CI fails them)" >&2
    fi
fi
echo "==> environment ready"
