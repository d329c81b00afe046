// Command webhookbench measures fraisier serve's webhook intake as a whole
// process: signed 5 KB GitHub pushes over 32 keep-alive connections, the
// load generator running beside the server on the same machine. Each
// delivery pushes a commit of its own (the same push under a new delivery
// id is a replay, which fraisier records and ignores), so the generator
// signs each as it sends it. Each delivery is authenticated, recorded in
// a SQLite state database and queued. Before the load, a push of main's
// tip deploys from a local git origin. By default (-deploys held) that
// deployment runs throughout, held in an install step that sleeps, and
// every push of the load replaces the one request waiting behind it: the
// intake's own cost, as in a burst while a slow deployment runs. With
// -deploys continuous the queue's workers take the waiting request back
// to back meanwhile: the load's commits are not in the origin, so each
// such deployment fetches and fails, and that git work competes for the
// cores too.
//
// Next to it, in the same run, a minimal Go handler that only reads the
// body, checks the HMAC and decodes the JSON, recording nothing, takes the
// same load. It runs as a child process of this program (this binary with
// -baseline-listen), as fraisier does, so that both servers compete with
// the generator for the machine's cores in the same way and neither shares
// the generator's scheduler. Rounds alternate which goes first.
//
// It prints requests/s, p50, p99, the server's peak resident memory, the
// ratio to the baseline and a verdict against the targets, and checks
// afterwards in the state database that every delivery answered 202 was
// recorded.
//
// The Go benchmarks in this package drive the same intake in-process
// (server.New over a real SQLite store, through httptest) for profiling:
//
//	go test -run '^$' -bench Intake -cpuprofile cpu.out ./bench/webhookbench
//	go tool pprof -top bench/webhookbench.test cpu.out
package main
