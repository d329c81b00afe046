// Command rolloutbench measures how rollouts across many hosts scale: one
// real PostgreSQL and 100 simulated hosts (web-001..web-100), each an
// in-process node wired as fraisier node wires one (a queue.Runner named
// after its host, the rollout loop with its heartbeat and LISTEN, a
// connection pool of its own), rolling a commit of a real fraise out
// across all of them with batches of 1, 10 and 25 hosts, on a fresh
// database and on one grown to a long history. The fraise deploys for real
// (git fetch and checkout of a tiny local origin, layout inplace) with no
// install, unit or health check: its steps are cheap, so what a rollout
// adds shows. It reports the coordination overhead per host (a rollout's
// time minus its steps' own time), against a single-host deploy of the
// same environment measured in the same run, and counts claim, advance and
// logged errors.
package main
