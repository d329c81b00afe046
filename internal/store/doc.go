// Package store is fraisier's state database: fraise state, deployments and
// their steps, webhook events, releases and locks. It runs on embedded SQLite
// by default and on PostgreSQL when several fraisier nodes share state; both
// backends share one implementation and one conformance suite (storetest).
//
// The schema is versioned by embedded migrations (migrations/<backend>/),
// applied in a transaction when the database is opened; a database written
// by a newer fraisier is refused with ErrSchemaTooNew. Tables (tb_*) are
// written only through this package; views (v_*) are for reading, by it and
// by anyone with a SQL prompt.
//
// Every time is stored as integer unix milliseconds, UTC, on both backends:
// it compares as a number, cannot carry a zone, and lets the two share all
// query code. The API speaks time.Time.
//
// Deployment statistics come from a rollup kept in the same transaction as
// FinishDeployment: each target's running totals (counts by status, summed
// durations, incidents, and a duration histogram with buckets 2% wide) as
// of the end of each day it had a finish. Any window is then the difference
// of two rows per target, so Stats costs a few rows per target however long
// the history or the window; RebuildStats derives the rollup again from the
// deployments.
//
// The deploy queue is tb_deployment: a request waits as a queued
// deployment, one per target. RecordIntake records a batch of deliveries
// in one transaction and queues, per target, only the batch's newest
// request; the older ones never waited and are folded into it
// (Queued.Folded), their deliveries recorded superseded. What a newer
// request does to the one already waiting is one rule, queueRequest's
// (supersede.go): a push takes a push's request over in place
// (Queued.Replaced), any other waiting request is finished superseded and
// counted in the statistics (Queued.Superseded).
//
// Several nodes sharing a PostgreSQL database coordinate through it alone:
// each heartbeats (tb_node); a push to an environment with hosts is a
// rollout (tb_rollout, tb_rollout_host) whose host steps are queued
// deployments of the per-host target environment@host, each claimed only
// by its host's node (QueuedDeploymentsFor). Every node advances the
// rollouts (AdvanceRollouts, one transaction per rollout, its row taken
// FOR UPDATE SKIP LOCKED), and every write that queues work or changes a
// rollout notifies fraisier_queue, which Listen turns into wake-ups.
// Each node records the health of its own host's targets
// (tb_host_health, RecordHostHealth), which SeeHostHealth judges for the
// views of every other node.
package store
