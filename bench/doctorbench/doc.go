// Command doctorbench measures a whole fraisier doctor run, as a process,
// on the example configuration (examples/fraises.yaml) on a host where
// everything answers: real bare git origins on disk, the app paths there,
// the units running in a real systemd user manager and answering their
// health checks, a migrated state database. It reports the median and p95
// wall time next to fraisier version's (process start) measured in the
// same run, and the median against the 2 s a doctor run must stay under;
// given -state-url, the same run with the state in that PostgreSQL database.
package main
