#!/usr/bin/env bash
# Wrapper for periodic scans (cron or the systemd timer beside this file): one dated output
# directory per run, resume of an interrupted run of the same day, log to the directory.
set -euo pipefail
CONFIG="${MXRAY_CONFIG:-/etc/mxray/mxray.toml}"
INPUT="${MXRAY_INPUT:-/var/lib/mxray/top-1m.csv}"
BASE="${MXRAY_OUT_BASE:-/var/lib/mxray/scans}"
OUT="$BASE/$(date -u +%Y-%m-%d)"
mkdir -p "$OUT"
args=(scan --config "$CONFIG" --out "$OUT" "$INPUT")
if [ -f "$OUT/scan-state.json" ] && ! grep -q '"complete"' "$OUT/scan-state.json"; then
    args+=(--resume)
fi
exec mxray "${args[@]}" 2>>"$OUT/mxray.log"
