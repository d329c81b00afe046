// Package packaging holds no code: it is the home of what the package
// ships besides the binary (systemd/, sysusers.d/, tmpfiles.d/), and its
// tests check those files with systemd's own tools (systemd-analyze verify
// and security, systemd-sysusers, systemd-tmpfiles) and against the
// binary they start.
package packaging
