// Package deploy is fraisier's deploy engine: it takes one fraise
// environment from the release it runs to a requested commit (fetch, release,
// install, migrate, switch, restart, health) or, when a step fails, back to
// exactly where it was, and records every step and the one honest terminal
// state: succeeded, failed, rolled_back or rollback_failed.
//
// # After a crash
//
// A fraisier that dies (kill -9, power loss) leaves its lock, a deployment
// recorded as running, and the environment wherever the dead process got to.
// The next deployment of the target (or fraisier serve starting) recovers
// the lock from the dead holder and records that deployment interrupted;
// releases it made but never switched to are marked bad. The record's current
// release is the last one a deployment verified (health check passed) and
// recorded; the current link on disk is what the next start would run. When
// they disagree (the dead deployment had switched, or its rollback failed
// after switching), the link is not trusted: the deployment starting now says
// so, goes from the recorded release as if the unfinished switch were its
// own, never skips as "already current", and on any failure, even at the
// fetch, switches back to the recorded release, restarts and health-checks it
// (rolled_back). So a deployment after a crash ends either succeeded on a
// release it verified or rolled_back to the recorded one, and the record names
// what current points at. A first deployment that died after its switch is
// taken back out on failure, as its own compensation would have done; a link
// fraisier never made (a tree adopted as it was) is left alone. After an
// interrupted deployment the database is returned on failure to the revision
// the recorded release ran at, not to wherever the dead deployment's
// migrations left it. fraisier status shows both the record and, live, what
// current points at, with a note when they differ.
//
// # Fault injection (tests only)
//
// Engine.Fault names a point where the process sends itself SIGKILL, so that
// tests can crash fraisier at an exact point and prove the above:
// kill:<step>[:before|after] for a step by its recorded name ("switch",
// "rollback health"; "before" is once the step is recorded running,
// "after", the default, once its end is recorded), or
// kill:record, after the outcome is decided and before it is written. The
// zero Fault never fires. The CLI fills it from FRAISIER_FAULT (ParseFault)
// for fraisier deploy, rollback and serve; nothing else sets it, and a
// malformed value is a usage error, never taken for no fault. All of this
// is compiled only with the build tag fraisier_faults (make test passes
// it): in the shipped binary ParseFault makes no fault of any value.
package deploy
