#!/usr/bin/env bash
# make demo: fraisier's main job on the embedded default (SQLite state) with
# real parts: a git origin, a systemd user manager running a small HTTP
# service, and fraisier deploying it, rolling a broken commit back by
# itself, and showing the record. Everything lives in a scratch directory
# that is removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-bin/fraisier}")
./scripts/test-deps.sh
go run ./demo "$bin"
