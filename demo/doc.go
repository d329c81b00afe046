// Command demo is what make demo runs: fraisier's main job on the embedded
// default (SQLite state), with real parts: a git origin it pushes to, a
// systemd user manager running a small HTTP service, and the fraisier
// binary deploying it: a good release, a second one, then a broken commit
// that is rolled back automatically, and the history that records it all.
package main
