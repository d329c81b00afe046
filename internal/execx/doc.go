// Package execx runs child processes the one way fraisier allows: an argv
// (never a shell), in a process group of its own that is killed whole on
// timeout or cancellation, with an environment that holds only an
// allowlist of fraisier's own plus what the caller gives, and with its
// output streamed to a sink and captured up to a cap that keeps the end,
// where the error usually is.
package execx
