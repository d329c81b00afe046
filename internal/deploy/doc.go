// Package deploy is fraisier's deploy engine: it takes one fraise
// environment from the release it runs to a requested commit (fetch, release,
// install, migrate, switch, restart, health) or, when a step fails, back to
// exactly where it was, and records every step and the one honest terminal
// state: succeeded, failed, rolled_back or rollback_failed.
package deploy
