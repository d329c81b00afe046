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
// afterwards in the state database that every first delivery answered
// 202 was recorded.
//
// A database that has lived a while: -grow N starts each fraisier on a
// copy of a state database holding N webhook events and a tenth as many
// deployments, a year of history made once by the benchmarks' generator
// (bench/grow, in bulk, not through HTTP) and kept in -dir. With
// -redeliver F, a fraction F of the deliveries are sent again under an
// id their connection sent before, with the same body, as GitHub's
// Redeliver button does; each must be answered as the first was (status
// and webhook event), and fraisier is measured in the same rounds with
// unique ids, the rate with redeliveries reported over that one. -bursts
// then runs bursts of that load on one fraisier process and reports its
// VmHWM (the kernel's high-water mark of its resident memory) over them
// and its VmRSS once idle after them, with the Go runtime's share from
// /metrics. -against OLD measures an older fraisier beside -bin in every
// round and burst, for a before and after in one run; it must know the
// state database's schema.
//
// The Go benchmarks in this package drive the same intake in-process
// (server.New over a real SQLite store, through httptest) for profiling:
//
//	go test -run '^$' -bench Intake -cpuprofile cpu.out ./bench/webhookbench
//	go tool pprof -top bench/webhookbench.test cpu.out
package main
