// Package queue runs the deploy queue that fraisier serve fills.
//
// The queue itself lives in the state database (see store.RecordIntake):
// a request waits as a queued deployment, at most one per target, and a
// newer push takes the waiting one over in the transaction that records
// it; the engine deploys the commit the row names when it claims it. This package is the workers: per target at most one deployment runs,
// at most Runner.MaxConcurrent run in all, and each runs through the
// deploy engine, which takes the same lock as fraisier deploy on the
// command line, so the CLI and the server never deploy one target at once.
//
// After a crash, Runner.Run first recovers: a deployment this host was
// running when its process died is recorded as interrupted (its lock is
// recovered by the engine) and its target is queued again, once, at its
// commit, unless a newer request already waits. On shutdown, running
// deployments get a grace period to finish; after it they are cancelled,
// which the engine turns into a rollback to the release that served
// before, and their commit is queued again so the next start resumes it.
package queue
