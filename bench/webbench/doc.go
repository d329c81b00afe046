// Command webbench measures the web dashboard's server time on a state
// database grown to 1,000,000 deployments and 1,000,000 webhook events
// (bench/grow, kept in bench/out): each page is read over loopback from an
// in-process fraisier serve handler, signed in, and its median and p95 are
// printed against the 50 ms target and against a static file's in the same
// run.
package main
