#!/usr/bin/env bash
# make bench: fraisier's performance figures, each next to a baseline measured
# in the same run (these machines are shared and noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/fraisier}
echo "== read commands against 1,000,000 deployments and 1,000,000 webhook events"
go run ./bench/clibench -bin "$bin" -dir bench/out
echo
echo "== the web dashboard's pages against 1,000,000 deployments and 1,000,000 webhook events, signed in, against a static file in the same run; target: under 50 ms"
go run ./bench/webbench -dir bench/out
echo
echo "== the live log on real deployments (fraisier serve, real git, real systemd user manager): from an install line's echo to a following client, and what 100 clients cost the deployment against the same deployment followed by none in the same run; targets: under 100 ms, under 5 %"
go run ./bench/livelogbench -bin "$bin" -rounds 5
echo
echo "== deploy and rollback against a script doing the same work by hand (real git, real systemd user manager)"
go run ./bench/deploybench -bin "$bin" -runs 7
echo
echo "== zero downtime (real git, real systemd user manager): failed requests under 200 requests/s during 20 deploys and 20 rollbacks per restart mode (targets: 0 for socket and blue_green behind nginx and behind Caddy, switched by reload or admin API and by blue_green.link; plain is the baseline); push-to-live from a signed GitHub push to the new commit answering, against the same work by hand in the same run (target: at most 1.3x)"
go run ./bench/zdbench -bin "$bin" -rounds 20 -rate 200 -pushes 7 -modes plain,socket,blue_green,blue_green_caddy,blue_green_caddy_link,blue_green_nginx_link
echo
echo "== rollouts across 100 hosts (in-process nodes: real runner, rollout loop, LISTEN and pool each) sharing one PostgreSQL, batches of 1, 10 and 25, on a fresh and a grown database: coordination overhead per host (rollout time minus its steps' own time) against a single-host deploy in the same run (target: under 50 ms), claim, advance and logged errors (target: 0), connections"
go run ./bench/rolloutbench -rollouts 2 -rollouts1 1
echo
echo "== fraisier doctor on the example configuration where everything answers (real git origins, units in a real systemd user manager, health checks), against fraisier version (process start) in the same run; target: under 2 s"
go run ./bench/doctorbench -bin "$bin" -runs 20
echo
echo "== webhook intake: signed 5 KB GitHub pushes over 32 connections, generator beside the server, against a minimal Go handler (read, HMAC, decode) in the same run"
go run ./bench/webhookbench -bin "$bin" -rounds 3
echo
echo "== webhook intake on a state database grown to 1,000,000 webhook events, one delivery in ten redelivered (GitHub's Redeliver), against the same load with unique ids in the same run; then the server's memory over 4 bursts of 15 s and once idle"
go run ./bench/webhookbench -bin "$bin" -rounds 3 -grow 1000000 -dir bench/out -redeliver 0.1 -bursts 4
echo
echo "== store queries (Go benchmarks)"
go test -run '^$' -bench '^Benchmark(Deployments|FraiseStates|Stats|Webhooks|OpenStatus|DeploymentCycle|Postgres)$' -benchtime 200x ./internal/store/ | grep -E '^(Benchmark|ok|PASS)'
echo
# One iteration each: an iteration of these is a whole measurement (rounds of
# seconds of load, or a pass over a grown database).
echo "== retention: the intake while serve prunes, against the same load without pruning; a whole prune pass (Go benchmarks)"
go test -run '^$' -bench '^Benchmark(IntakeWhilePruning|Prune)$' -benchtime 1x ./internal/store/ | grep -E '^(Benchmark|ok|PASS)'
