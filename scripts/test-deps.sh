#!/usr/bin/env bash
# Installs what the integration tests need and a fresh Debian machine lacks:
# git, a systemd user manager's binaries, PostgreSQL server binaries, the
# migration tools (alembic, Django), Chromium for the dashboard's browser
# tests and nginx and Caddy for the blue/green tests from Debian's packages, and the Debian tree the booted-systemd tests
# boot with systemd-nspawn (.cache/nspawn, made by scripts/nspawn-root.sh;
# root only). Idempotent: it installs only what is missing, so a prepared
# machine pays nothing.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

have git || need+=(git)
[ -x /lib/systemd/systemd ] || need+=(systemd)
have unshare || need+=(util-linux)
[ -x "$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -1)" ] 2>/dev/null || need+=(postgresql)
have alembic || need+=(alembic)
pkg_installed python3-django || need+=(python3-django)
have sqlite3 || need+=(sqlite3)
have systemd-nspawn || need+=(systemd-container)
have debootstrap || need+=(debootstrap)
have dpkg-deb || need+=(dpkg)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/sbin/nginx ] || need+=(nginx)
[ -x /usr/bin/caddy ] || need+=(caddy)

if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "test-deps: missing ${need[*]}; run as root or install them: apt-get install ${need[*]}" >&2
		exit 1
	fi
	echo "test-deps: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Booting a tree needs root; without it the booted tests say they cannot run.
if [ "$(id -u)" -eq 0 ]; then
	"$(dirname "$0")/nspawn-root.sh" "$(cd "$(dirname "$0")/.." && pwd)/.cache/nspawn/bookworm"
fi
