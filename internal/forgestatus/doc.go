// Package forgestatus reports a deployment's state for a commit on the forge
// the commit came from: GitHub (a deployment with deployment statuses, or a
// commit status where the token may not create deployments), GitLab (a
// commit status, and a deployment in the environment when the report names
// its ref), Gitea and Forgejo (a commit status), Bitbucket Cloud and
// Bitbucket Data Center (a build status).
//
// A caller builds a Report from what it stored (a Report marshals to JSON
// without its token and API URL, so it fits an outbox row), adds the token
// and API URL from the configuration when it sends, and calls Client.Send:
//
//	r.APIURL, r.Token = apiURL, token
//	res, err := client.Send(ctx, r)
//	next.Remember(res) // the next report of the same deployment
//
// Every error Send returns is an *Error: Retryable says whether to try
// again (a network failure, 408, 429, 5xx, a rate limit), RetryAfter how
// long the forge asked to wait; anything else (401, 403, 404, 422, a
// report that cannot be sent) is permanent. An error holds the forge's own
// message, capped and without control characters, and never the token.
//
// The forges' requests, their states and the facts they were taken from are
// in docs/forge-status.md; ForgeState maps fraisier's deployment statuses
// to each forge's states.
package forgestatus
