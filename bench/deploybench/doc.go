// Command deploybench measures fraisier deploy against a shell script that
// does the same work by hand, and fraisier rollback against the service's
// own restart and health time, all in one run on one machine, with a real
// systemd user manager and a real git origin.
package main
