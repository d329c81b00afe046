// Package grow makes state databases that have lived: a year of synthetic
// deployments and webhook events, inserted in bulk rather than through the
// store's API, for the benchmarks and for the store's tests that need a
// large history. The same seed gives the same rows.
package grow
