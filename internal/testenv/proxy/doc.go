// Package proxy runs the reverse proxies a blue/green deployment switches,
// for tests: a real nginx and a real Caddy from the system's packages,
// each an unprivileged process on loopback ports with its configuration,
// logs and pid file in a directory of the test's own. Either one missing
// ends the test through testenv.Unavailable.
package proxy
