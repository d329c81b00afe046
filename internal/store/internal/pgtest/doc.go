// Package pgtest runs a throwaway PostgreSQL server for tests: one cluster
// per test binary, started on first use, listening on a unix socket only,
// and a fresh database per test. When PostgreSQL is not installed tests
// skip, or fail under FRAISIER_TEST_STRICT=1. Test support only.
package pgtest
