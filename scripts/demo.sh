#!/usr/bin/env bash
# make demo: fraisier's main job on the embedded default (SQLite state), in a
# scratch directory that is removed afterwards. Nothing outside it changes.
set -euo pipefail
bin=$(realpath "${1:-bin/fraisier}")
repo=$(cd "$(dirname "$0")/.." && pwd)
root=$(mktemp -d /tmp/fraisier-demo.XXXXXX)
trap 'rm -rf "$root"' EXIT

export FRAISIER_DEMO_ROOT="$root"
export FRAISIER_CONFIG="$repo/examples/fraises.yaml"
export FRAISIER_STATE="$root/state/fraisier.db"

if [ -t 1 ] && [ -z "${NO_COLOR+x}" ]; then bold=$'\033[1m' reset=$'\033[0m'; else bold= reset=; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$reset"; "$@"; }

step "$bin" version
step "$bin" config validate
step "$bin" list
step "$bin" status
step "$bin" history
step "$bin" stats
step "$bin" webhooks
printf '\nThe state database is SQLite at %s (removed on exit).\n' "$FRAISIER_STATE"
