// Package storetest is the conformance suite every store backend must
// pass: SQLite and PostgreSQL run the same tests.
package storetest
