// Package health answers "does this release serve?": it probes a URL, a TCP
// port, a command or systemd units, retrying on a schedule bounded by a retry
// count, a per-try timeout and an overall deadline, and reports every try so
// the caller can show progress and explain a failure.
package health
