// Package execx runs fraisier's child processes. A command is an argv,
// never a shell line. It runs in a process group of its own, killed whole
// on timeout or cancellation, with an environment that holds only an
// allowlist of fraisier's own (which carries secrets) plus what the caller
// gives. Its output is streamed to a sink and captured up to a cap that
// keeps the end, where the error usually is.
package execx
