// Package testenv is the real-parts fixture the deploy, cli and server
// tests share: a git origin to push to, the test HTTP service to deploy,
// the fraisier binary, background processes and waiting for a condition;
// subpackage systemd adds a user manager and units, pg a PostgreSQL
// cluster. It also holds the rule for what a test does when an outside
// system is missing: skip, or fail when FRAISIER_TEST_STRICT=1 so that CI
// cannot pass by skipping. It is test support only; production code never
// imports it.
package testenv
