#!/usr/bin/env bash
# Installs wanderlust (editable) into the active Python, with optional extras: atari, envpool,
# procgen, crafter, wandb, analysis, dev, all (comma-separated).
#
# torch comes first so that pip never resolves it by itself: an importable torch (say a CUDA build
# a GPU user already has) is kept as it is; otherwise torch==$WANDERLUST_TORCH (default 2.13.0) is
# installed, which takes the local CPU wheel on machines that carry one.
#
# The extras procgen, dev and all also need the Qt 5 runtime that envpool's Procgen links against,
# which pip cannot install: as root with apt-get it is installed from Debian's packages (libqt5gui5)
# unless it is already there; otherwise a note says what to install (Procgen tests skip without it).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python=${PYTHON:-python3}
if ! "$python" -c "import torch" 2>/dev/null; then
  "$python" -m pip install "torch==${WANDERLUST_TORCH:-2.13.0}"
fi
if [ -n "$extras" ]; then
  "$python" -m pip install -e ".[$extras]"
else
  "$python" -m pip install -e .
fi
case ",$extras," in
  *,procgen,* | *,dev,* | *,all,*)
    # Loading the library the way envpool will is the check that also holds off Debian.
    if ! "$python" -c "import ctypes; ctypes.CDLL('libQt5Gui.so.5')" 2>/dev/null; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt_log=$(mktemp)
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends libqt5gui5; } >"$apt_log" 2>&1; then
          cat "$apt_log" >&2
          echo "install.sh: could not install libqt5gui5; Procgen will not run" >&2
        fi
        rm -f "$apt_log"
      else
        echo "install.sh: Procgen needs the Qt 5 runtime: apt-get install libqt5gui5 (Debian/Ubuntu)" >&2
      fi
    fi
    ;;
esac
