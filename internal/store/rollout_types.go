package store

import "time"

// A rollout deploys one commit of an environment to each of its hosts,
// in batches, with the state database as the only coordinator: every node
// advances rollouts in transactions of their own and claims only the
// steps of its own host. Each host's step is an ordinary deployment of
// the per-host target (environment@host).

// TriggerRollout marks a deployment that is one host's step of a rollout.
// Crash recovery never queues it again: the rollout decides what follows.
const TriggerRollout Trigger = "rollout"

// Node is one fraisier process sharing the state database, as its last
// heartbeat recorded it.
type Node struct {
	Name        string    `json:"name"`
	Hostname    string    `json:"hostname"`
	Version     string    `json:"version"`
	PID         int       `json:"pid"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
}

// RolloutPolicy is how a rollout goes through its hosts.
type RolloutPolicy struct {
	// Hosts in rollout order; the migration host is moved first.
	Hosts []string `json:"hosts"`
	// Canary: the first host deploys alone, then the rollout waits
	// CanaryWait (its node checks the host's health again at the end) or,
	// with CanaryManual, until someone resumes it.
	Canary       bool          `json:"canary"`
	CanaryWait   time.Duration `json:"canary_wait"`
	CanaryManual bool          `json:"canary_manual"`
	// Batch is how many hosts deploy at once after the first (at least 1).
	Batch int `json:"batch"`
	// Pause is the wait between two batches.
	Pause time.Duration `json:"pause"`
	// MigrateHost runs the migrations, once per rollout, before any other
	// host switches; it is always the first host.
	MigrateHost string `json:"migrate_host"`
	// NodeTimeout is the heartbeat age after which a node is dead.
	NodeTimeout time.Duration `json:"node_timeout"`
	// ClaimTimeout bounds how long a host's step may wait for its node.
	ClaimTimeout time.Duration `json:"claim_timeout"`
}

// RolloutStatus is where a rollout is.
type RolloutStatus string

// The rollout statuses; the last five are terminal.
const (
	RolloutQueued         RolloutStatus = "queued" // behind a running rollout of its target
	RolloutRunning        RolloutStatus = "running"
	RolloutRollingBack    RolloutStatus = "rolling_back"
	RolloutSucceeded      RolloutStatus = "succeeded"       // every host deployed
	RolloutFailed         RolloutStatus = "failed"          // stopped; some host's state is unknown or not restored
	RolloutRolledBack     RolloutStatus = "rolled_back"     // stopped; every host is back on its previous release
	RolloutRollbackFailed RolloutStatus = "rollback_failed" // a host's rollback failed: operator needed
	RolloutSuperseded     RolloutStatus = "superseded"      // a newer push replaced it before it started
)

// HostStatus is where one host of a rollout is.
type HostStatus string

// The host statuses of a rollout.
const (
	HostPending        HostStatus = "pending"
	HostDeploying      HostStatus = "deploying"
	HostSucceeded      HostStatus = "succeeded"
	HostFailed         HostStatus = "failed"
	HostRollingBack    HostStatus = "rolling_back"
	HostRolledBack     HostStatus = "rolled_back"
	HostRollbackFailed HostStatus = "rollback_failed"
	HostSkipped        HostStatus = "skipped" // never started: the rollout stopped first
	HostLost           HostStatus = "lost"    // its node stopped answering during its step
)

// Rollout is one commit's way through an environment's hosts.
type Rollout struct {
	ID            int64         `json:"id"`
	Target                      // fraise, environment (the base environment, without @host)
	SHA           string        `json:"sha"`
	Ref           string        `json:"ref"`
	Trigger       Trigger       `json:"trigger"`
	Actor         string        `json:"actor"`
	WebhookID     *int64        `json:"webhook_event_id,omitempty"`
	Status        RolloutStatus `json:"status"`
	Policy        RolloutPolicy `json:"policy"`
	Batch         int           `json:"batch"`
	NextAt        *time.Time    `json:"next_at,omitempty"`
	WaitingResume bool          `json:"waiting_resume"`
	CreatedAt     time.Time     `json:"created_at"`
	StartedAt     *time.Time    `json:"started_at,omitempty"`
	FinishedAt    *time.Time    `json:"finished_at,omitempty"`
	Error         string        `json:"error"`
	SupersededBy  *int64        `json:"superseded_by,omitempty"`
	Hosts         []RolloutHost `json:"hosts"`
}

// RolloutHost is one host's part in a rollout.
type RolloutHost struct {
	Host         string     `json:"host"`
	Position     int        `json:"position"`
	Batch        int        `json:"batch"`
	Status       HostStatus `json:"status"`
	DeploymentID *int64     `json:"deployment_id,omitempty"`
	RollbackID   *int64     `json:"rollback_id,omitempty"`
	OldSHA       string     `json:"old_sha"`
	Error        string     `json:"error"`
	StartedAt    *time.Time `json:"started_at,omitempty"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
}

// RolloutFilter selects rollouts: of one target (base environment) when
// set, only those not ended when Active, newest first, at most Limit.
type RolloutFilter struct {
	Target Target
	Active bool
	Limit  int
}

// RolloutChange is one transition AdvanceRollouts made, for logs and
// notifications.
type RolloutChange struct {
	RolloutID int64         `json:"rollout_id"`
	Target                  // base environment
	Host      string        `json:"host,omitempty"`
	Status    RolloutStatus `json:"status"`
	What      string        `json:"what"`
}

// AdvanceResult is what one pass of AdvanceRollouts did, and when the
// next pass is due at the latest (zero: only when woken).
type AdvanceResult struct {
	Changed []RolloutChange
	Next    time.Time
}
