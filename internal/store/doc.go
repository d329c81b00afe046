// Package store is fraisier's state database: fraise state, deployments and
// their steps, webhook events, releases and locks. It runs on embedded SQLite
// by default and on PostgreSQL when several fraisier nodes share state; both
// backends share one implementation and one conformance suite.
package store
