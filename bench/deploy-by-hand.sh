#!/usr/bin/env bash
# The baseline of make bench's deploy figure: the same work as a deploy,
# done by hand the way a small team's script does it, and nothing more:
# fetch into a mirror, create the release from the exact commit, switch the
# current symlink, restart the unit, poll the health URL.
#   deploy-by-hand.sh ORIGIN APP_PATH UNIT HEALTH_URL   (XDG_RUNTIME_DIR set)
set -euo pipefail
origin=$1 app=$2 unit=$3 url=$4
mkdir -p "$app/releases"
[ -d "$app/repo" ] || git clone -q --bare "$origin" "$app/repo"
git -C "$app/repo" fetch -q origin '+refs/heads/*:refs/heads/*'
sha=$(git -C "$app/repo" rev-parse main)
rel="$app/releases/$(date -u +%Y%m%dT%H%M%S%N)-${sha:0:8}"
mkdir "$rel"
git -C "$app/repo" archive "$sha" | tar -x -C "$rel"
ln -sfn "$rel" "$app/current.tmp"
mv -T "$app/current.tmp" "$app/current"
systemctl --user restart "$unit"
for _ in $(seq 1 200); do
	curl -fsS -o /dev/null "$url" && exit 0
	sleep 0.05
done
echo "health check never passed" >&2
exit 1
