// Command livelogbench measures the live log on real deployments: how long
// a line an install step prints takes to reach a client following the
// deployment's log (Server-Sent Events from fraisier serve), and what 100
// such clients cost the deployment, against the same deployment followed
// by no one, in one run on one machine, with a real systemd user manager
// and a real git origin.
package main
