// Package browser runs the dashboard's browser tests in a real headless
// Chromium from Debian's packages (/usr/bin/chromium), driven over the
// DevTools protocol with chromedp. Each browser gets a fresh profile,
// talks to its test only through a pipe (no debugging port), and cannot
// reach the network: every request that is not for a loopback address is
// sent to a guard proxy that refuses it and records it, so that a page
// that asks for an outside resource fails fast and the test can see it.
// Every Chromium process is killed when its browser is closed. A machine
// without Chromium skips the test, or fails it under
// FRAISIER_TEST_STRICT=1 (scripts/test-deps.sh installs it). It is test
// support only; production code never imports it.
package browser
