// Package queue runs the deploy queue that fraisier serve fills.
//
// The queue itself lives in the state database: a request waits as a
// queued deployment, at most one per target. This package is the workers:
// per target at most one deployment runs, at most Runner.MaxConcurrent run
// in all, and each runs through the deploy engine, which takes the same
// lock as fraisier deploy on the command line, so the CLI and the server
// never deploy one target at once.
//
// # Nodes and rollouts
//
// Several nodes (fraisier serve or fraisier node, one per host) may share
// a PostgreSQL state. Runner.Node is this node's name: the runner takes
// the requests of any node and the steps queued for its own (a rollout's
// step of host web-2 runs on node web-2 only), and it is the Host of the
// lock owner, so tb_deployment.host and crash recovery are per node.
// A rollout's step deploys without migrating unless its host is the
// rollout's migration host (deploy.Request.NoMigrate); crash recovery
// never queues a step again: its rollout decides. RolloutLoop is the
// node's heartbeat and its share of the coordination: it advances every
// rollout (store.AdvanceRollouts) after a step it ran, when PostgreSQL's
// LISTEN wakes it and at the deadline the last pass returned, never on a
// shorter poll, and it checks its host's health at the end of a timed
// canary window. With LISTEN waking the runner too, serve's Poll is only a
// backstop (30s instead of SQLite's 2s). Beside it, HostProber records
// the health of the node's own host targets (every 15 s, and right after
// a deployment of one ends), which every other node then shows.
//
// # When a newer push arrives
//
// Three packages share the rule; in order:
//
//   - fraisier serve's batching writer (internal/server) records the
//     deliveries that arrive together in one transaction
//     (store.RecordIntake). Within it only the newest request for a target
//     stands; the older ones are folded into it.
//   - In that transaction, the store's supersede rule replaces the request
//     already waiting for the target: one a push queued is taken over in
//     place (the same deployment, now of the newer commit), any other is
//     finished superseded and the newer one queued.
//   - A push to an environment with trigger: checks is held instead of
//     queued (store.CheckReport): a newer held push supersedes the older
//     one the same way, and the push whose checks pass is queued through
//     the same rule, as if it had just arrived.
//   - A deployment already running is never stopped for it: the newer push
//     waits as the target's queued request and runs after.
//   - A worker lists the queue, and the engine claims the request only once
//     it holds the target's lock: it deploys the commit the row names at
//     the claim, which may be a push newer than the one listed. A request
//     superseded meanwhile is not run (deploy.ErrNotQueued).
//   - After the fetch, the engine deploys a pushed commit only while it is
//     still its ref's tip and, when what runs came from the same ref,
//     descends from it: a late or replayed delivery ends skipped
//     (deploy.ErrRefused) instead of taking the service back.
//
// # After a crash, and on shutdown
//
// Runner.Run first recovers: a deployment this host was running when its
// process died is recorded as interrupted (its lock is recovered by the
// engine) and its target is queued again, once, at its commit, unless a
// newer request already waits. On shutdown, running deployments get a
// grace period to finish; after it they are cancelled, which the engine
// turns into a rollback to the release that served before, and their
// commit is queued again, unless a newer request waits, so the next start
// resumes it.
package queue
