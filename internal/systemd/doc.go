// Package systemd is fraisier's only way to talk to systemd: it runs
// systemctl and systemd-analyze (through execx, argv only) against the
// system manager or a user manager, asks unit state over the manager's
// private D-Bus socket where it can (go-systemd's client, in process;
// systemctl otherwise), writes unit files atomically, renders the service
// and timer units of scheduled jobs, and tells an honestly running service
// from one that crashed right after it was (re)started.
package systemd
