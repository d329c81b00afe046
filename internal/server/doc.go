// Package server is fraisier serve: it receives webhooks and turns pushes
// into queued deployments, and answers health, readiness, metrics and a
// read-only API.
//
// A delivery goes through, in order: the rate limits (per client address,
// believing X-Forwarded-For only from configured trusted proxies, and
// global), the body limit and content type, forge detection (its own
// headers or the path /webhook/{forge}), authentication over the raw
// bytes (internal/forge), parsing, and routing (repository plus branch or
// tag to every matching fraise environment, see config.Match). The
// delivery and the requests routing made of it are then written in one
// transaction (store.RecordIntake) by a single writer that commits many
// deliveries at once, and only then answered: 202 naming the queued
// deployments, 200 for a ping or an ignored event with the reason, and the
// status of every refusal documented in docs/webhooks.md. A delivery id
// seen before gets the original answer and queues nothing new.
//
// Deliveries that fail authentication are recorded as rejected but never
// with their delivery id, so that a forged request cannot claim the id of
// a real delivery still to come. Secrets never reach a log line, a record
// or an answer.
//
// The queued requests are run by internal/queue. The dashboard
// (internal/web) is mounted under /ui/; its actions run the deploy API's
// handlers (webui.go).
package server
