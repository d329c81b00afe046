// Package web is the dashboard fraisier serve shows under /ui/: pages
// rendered on the server from embedded templates (overview, deployment,
// history, webhooks, stats, jobs) and the actions rollback, lock and
// unlock.
//
// A user signs in with an API token once; the browser then holds only a
// random session id in an HttpOnly, SameSite=Strict cookie, mapped in this
// process's memory to the token's id, name and scopes (sessions end with
// the process or after their lifetime). Every state-changing POST carries
// the session's CSRF token and must come from the same origin. Actions are
// not carried out here: they go through the deploy API's own handlers,
// which the server hands in as Act, so that scopes, locks and the choice
// of release are decided in one place.
package web
