// Package systemd gives tests a real systemd user manager, including on
// machines where systemd is not PID 1: it starts a private `systemd --user`
// in a mount namespace of its own (see Start for how), or, where that is
// not possible, borrows the session's user manager and isolates the test's
// units by a name prefix. Test support only; production code never imports
// it.
package systemd
