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
// Deployment statistics come from rollups kept in the same transaction as
// FinishDeployment (per day and all time, counts and sums by status, and
// duration histograms with buckets 2% wide), so Stats costs a few dozen
// rows however long the history; RebuildStats derives them again from the
// deployments.
package store
