// Package testenv provides real outside systems for tests — a systemd user
// manager (subpackage systemd), a small HTTP service to deploy (BuildHTTPApp)
// — and the rule for what a test does when one is missing: skip, or fail
// when FRAISIER_TEST_STRICT=1 so that CI cannot pass by skipping. It is test
// support only; production code never imports it.
package testenv
