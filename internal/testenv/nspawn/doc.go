// Package nspawn boots a whole Debian system with systemd-nspawn for the
// tests that need what no user manager has: a system manager, the system
// D-Bus, logind and polkit, system users and dpkg. The tree is made once
// by scripts/nspawn-root.sh (run by scripts/test-deps.sh) and only read:
// every boot overlays it with memory (--volatile=overlay), so a test
// installs packages and creates users without changing it. The machine
// has only a loopback interface (--private-network); commands run inside
// it through nsenter, as root or as any of its users.
package nspawn
