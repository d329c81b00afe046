// Command zdbench measures zero downtime on real deployments: an
// open-loop load generator sends requests at a fixed rate to a service
// through its front (its own port, its systemd socket, or the proxy of
// blue/green) while fraisier deploys and rolls it back, and counts the
// requests that fail, per restart mode; then it measures push-to-live,
// from a signed GitHub push reaching fraisier serve to the new commit
// answering, against the same work done by hand (bench/deploy-by-hand.sh)
// in the same run. Everything runs on one machine, with a real systemd
// user manager and a real git origin.
package main
