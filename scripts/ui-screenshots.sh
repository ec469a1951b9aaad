#!/usr/bin/env bash
# Screenshots of the habackup integration in Home Assistant's real UI, for the README:
# docs/screenshots/*.png. Starts Home Assistant (hass -c on a temporary config, its frontend from
# PyPI) with the integration and a folder location, onboards it through the API, and captures
# the add-location dialog and Settings > System > Backups with headless Chromium (Debian's
# package: apt-get install chromium). Fails when the UI shows a raw translation key.
#
# Needs the extension built into python/habackup (./scripts/test.sh or maturin develop). The
# venv (Home Assistant and home-assistant-frontend, pinned below) is cached in $HA_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ha-env/common.sh

HA_VERSION=2026.2.3
FRONTEND_VERSION=20260128.6 # what Home Assistant $HA_VERSION's frontend integration pins
# What the integrations Home Assistant imports to check any services.yaml need (conversation,
# tts, camera, assist_pipeline, ffmpeg), at the versions $HA_VERSION pins: without them the
# frontend's get_services fails and the UI never finishes loading.
BASE_REQUIREMENTS=(hassil==3.5.0 home-assistant-intents==2026.1.28 PyTurboJPEG==1.8.0
    mutagen==1.47.0 pymicro-vad==1.0.1 pyspeex-noise==1.0.2 ha-ffmpeg==3.2.2)
command -v chromium >/dev/null || die "chromium not found: apt-get install chromium"
ls python/habackup/_core*.so >/dev/null 2>&1 || die "no extension in python/habackup: run ./scripts/test.sh or maturin develop first"

PYTHON=$(scripts/ha-env/python.sh 3.13.2 "for Home Assistant $HA_VERSION")
VENV=$HA_CACHE/ui-$HA_VERSION-$FRONTEND_VERSION
if [[ ! -f $VENV/$HA_STAMP ]]; then
    lock "ui-$HA_VERSION"
    if [[ ! -f $VENV/$HA_STAMP ]]; then
        step "installing Home Assistant $HA_VERSION and its frontend into $VENV (once)"
        rm -rf "$VENV"
        timed "venv" "$PYTHON" -m venv "$VENV"
        timed "pip install" "$VENV/bin/python" -m pip install -q \
            "homeassistant==$HA_VERSION" "home-assistant-frontend==$FRONTEND_VERSION" \
            "${BASE_REQUIREMENTS[@]}"
        touch "$VENV/$HA_STAMP"
    fi
    unlock
fi
step "Home Assistant $HA_VERSION: screenshots into docs/screenshots"
exec "$VENV/bin/python" scripts/ui_screenshots.py "$@"
