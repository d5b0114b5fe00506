#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing (as root, with apt-get).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
python3 - <<'PY' 2>/dev/null || missing+=(libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core)
import ctypes.util, sys
sys.exit(0 if ctypes.util.find_library("pango-1.0") else 1)
PY
# WeasyPrint subsets the invoice PDFs' fonts with HarfBuzz when it can (fontTools otherwise, with a warning).
python3 - <<'PY' 2>/dev/null || missing+=(libharfbuzz-subset0)
import ctypes.util, sys
sys.exit(0 if ctypes.util.find_library("harfbuzz-subset") else 1)
PY
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
  echo "Missing system packages: ${missing[*]} (install them with your package manager)." >&2
  exit 0
fi
echo "Installing system packages: ${missing[*]}"
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
