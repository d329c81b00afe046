#!/usr/bin/env bash
# Makes the Debian tree that the booted-systemd tests boot with
# systemd-nspawn (internal/testenv/nspawn): a minimal bookworm with
# systemd, D-Bus, logind and polkit, the parts fraisier's package meets on a
# real server. The tree is only read: each test boots it with
# --volatile=overlay, so its writes go to memory. Idempotent: a tree made
# from the same package list is kept.
#
#   scripts/nspawn-root.sh DIR [MIRROR]
set -euo pipefail

dir=${1:?usage: nspawn-root.sh DIR [MIRROR]}
mirror=${2:-${FRAISIER_DEBIAN_MIRROR:-http://deb.debian.org/debian}}
packages=systemd,systemd-sysv,dbus,libpam-systemd,polkitd,procps,git,ca-certificates
stamp="bookworm $packages no-hostname"

if [ -f "$dir/.fraisier-nspawn-root" ] && [ "$(cat "$dir/.fraisier-nspawn-root")" = "$stamp" ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "nspawn-root: debootstrap needs root" >&2
	exit 1
fi
mkdir -p "$(dirname "$dir")"
tmp=$(mktemp -d "$dir.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "nspawn-root: debootstrap bookworm into $dir (about a minute)" >&2
if ! debootstrap --variant=minbase --include="$packages" bookworm "$tmp" "$mirror" >"$tmp.log" 2>&1; then
	tail -20 "$tmp.log" >&2
	rm -f "$tmp.log"
	exit 1
fi
rm -f "$tmp.log"
# Nothing in the tree may reach the network or wait for it: the tests boot
# it with only a loopback interface.
rm -f "$tmp"/etc/systemd/system/timers.target.wants/*
# debootstrap copies this host's name; a machine is named by its test.
rm -f "$tmp/etc/hostname"
echo "$stamp" >"$tmp/.fraisier-nspawn-root"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
