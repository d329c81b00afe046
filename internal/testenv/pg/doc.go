// Package pg starts a throwaway PostgreSQL cluster for tests (store,
// migrate, deploy): initdb into a temporary directory, trust authentication,
// a unix socket only (no TCP port, no network), stopped and removed by
// Stop. It is test support only; production code never imports it, and it
// reports a missing PostgreSQL as ErrUnavailable so that the test decides
// whether that is a skip or, under FRAISIER_TEST_STRICT=1, a failure.
// Server wraps one cluster per test binary, started on first use, with an
// empty database per test (and that decision made for it).
package pg
