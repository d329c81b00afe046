// Package notify tells people what fraisier did: it turns deployments that
// ended, locks held too long, stuck queues and webhooks refused for a bad
// signature into messages, routes them by the configuration's notify
// section, and sends them.
//
// Delivery never holds up a deployment. A Notifier only writes messages to
// the state database's outbox; a Sender, running beside fraisier serve's
// workers, claims the messages that are due, sends each with a timeout,
// retries failures with exponential backoff and jitter, and gives a
// message up after the configured number of attempts, recording every
// attempt. A message's payload holds no secret: the target's URL and
// signing key are read from the configuration, by target name, when it is
// sent, and every error recorded or logged is scrubbed of the
// configuration's secrets.
//
// Targets are fraisier's own signed JSON webhook (webhook+https://; see
// docs/notifications.md for how a receiver verifies it) and the chat and
// mail services of shoutrrr URLs.
package notify
