#!/usr/bin/env bash
# Makes docs/dashboard.png: the demo with a rollout in progress, shot by
# headless Chromium. Usage: docs/dashboard-screenshot.sh [path/to/switchyard]
# (default target/release/switchyard). Uses ports 18080/19901 on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/switchyard}
admin=127.0.0.1:19901
"$bin" demo --listen 127.0.0.1:18080 --admin "$admin" --traffic 200 >/dev/null 2>&1 &
demo=$!
trap 'kill $demo 2>/dev/null || true' EXIT
ctl() { "$bin" ctl --admin "http://$admin" "$@" >/dev/null; }
for _ in $(seq 50); do curl -sf "http://$admin/healthz" >/dev/null && break; sleep 0.1; done
ctl weights demo blue=90 green=10 --reason "canary by hand"
sleep 3
ctl rollback demo --reason "wrong build; v2.4.1 goes next"
sleep 20
ctl rollout start demo green --steps 5,25,50,100 --step-interval 30s --reason "release v2.4.1"
sleep 40   # into the second step, with the analysis passing
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1000,860 \
  --virtual-time-budget=3000 --screenshot=/tmp/switchyard-dashboard.png "http://$admin/ui" >/dev/null 2>&1
# A 64-colour palette keeps it small (needs Python's Pillow; else the PNG is kept as shot).
python3 - <<'PY' || cp /tmp/switchyard-dashboard.png docs/dashboard.png
from PIL import Image
Image.open("/tmp/switchyard-dashboard.png").convert("RGB").quantize(64).save("docs/dashboard.png", optimize=True)
PY
ls -l docs/dashboard.png
