package store

import (
	"errors"
	"time"
)

// Status is where a deployment stands. A deployment is created queued or
// running and ends in exactly one of the terminal states; interrupted is set
// by recovery when the process that ran it died.
type Status string

// The deployment statuses.
const (
	StatusQueued         Status = "queued"
	StatusRunning        Status = "running"
	StatusSucceeded      Status = "succeeded"
	StatusFailed         Status = "failed"          // nothing changed: the old release still serves
	StatusRolledBack     Status = "rolled_back"     // back on the previous release and healthy
	StatusRollbackFailed Status = "rollback_failed" // operator needed
	StatusInterrupted    Status = "interrupted"     // the deploying process died
	StatusSkipped        Status = "skipped"         // target already current and healthy
	StatusSuperseded     Status = "superseded"      // a newer request replaced it before it ran
)

// Trigger is what started a deployment.
type Trigger string

// The triggers.
const (
	TriggerWebhook  Trigger = "webhook"
	TriggerCLI      Trigger = "cli"
	TriggerPoll     Trigger = "poll"
	TriggerRollback Trigger = "rollback"
	TriggerSchedule Trigger = "schedule"
)

// Outcome is what became of a webhook delivery.
type Outcome string

// The webhook outcomes.
const (
	OutcomeAccepted   Outcome = "accepted"
	OutcomeIgnored    Outcome = "ignored"
	OutcomeRejected   Outcome = "rejected"
	OutcomeDuplicate  Outcome = "duplicate"
	OutcomeSuperseded Outcome = "superseded"
)

// Release states.
const (
	ReleaseCurrent = "current"
	ReleaseGood    = "good"
	ReleaseBad     = "bad"
	ReleaseNew     = "new" // created, not yet switched to
)

// Step statuses.
const (
	StepRunning   = "running"
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
	StepSkipped   = "skipped"
)

// Typed errors callers branch on.
var (
	ErrNotFound = errors.New("not found")
	// ErrSchemaTooNew means the database was written by a newer fraisier.
	ErrSchemaTooNew = errors.New("state database schema is newer than this fraisier")
	// ErrLocked means another owner holds a live lock.
	ErrLocked = errors.New("locked")
)

// Target names one environment of one fraise.
type Target struct {
	Fraise      string `json:"fraise"`
	Environment string `json:"environment"`
}

func (t Target) String() string { return t.Fraise + "/" + t.Environment }

// FraiseState is what runs where, as last recorded.
type FraiseState struct {
	Target
	Status         Status    `json:"status"` // status of the last deployment, or "never"
	CurrentSHA     string    `json:"current_sha"`
	CurrentRelease string    `json:"current_release"`
	DeployedAt     time.Time `json:"deployed_at"`
	DeployedBy     string    `json:"deployed_by"`
	LastDeployment int64     `json:"last_deployment_id"`
	// BrokenSince is set while the target is known unhealthy (rollback_failed).
	BrokenSince *time.Time `json:"broken_since,omitempty"`
}

// Deployment is one attempt to take a target to a commit.
type Deployment struct {
	ID           int64      `json:"id"`
	Target                  // fraise, environment
	Trigger      Trigger    `json:"trigger"`
	Actor        string     `json:"actor"`
	RequestedRef string     `json:"requested_ref"`
	OldSHA       string     `json:"old_sha"`
	NewSHA       string     `json:"new_sha"`
	Release      string     `json:"release"`
	Status       Status     `json:"status"`
	StartedAt    time.Time  `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
	DurationMS   int64      `json:"duration_ms"`
	Error        string     `json:"error"`
	WebhookID    *int64     `json:"webhook_event_id,omitempty"`
	Host         string     `json:"host"`
	PID          int        `json:"pid"`
	// RolloutID is the rollout this deployment is one host's step of.
	RolloutID *int64 `json:"rollout_id,omitempty"`
	// Node is the node that must run it; empty: any node.
	Node string `json:"node,omitempty"`
}

// Step is one recorded step of a deployment.
type Step struct {
	ID           int64      `json:"id"`
	DeploymentID int64      `json:"deployment_id"`
	Seq          int        `json:"seq"`
	Name         string     `json:"name"`
	Status       string     `json:"status"`
	StartedAt    time.Time  `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
	ExitCode     *int       `json:"exit_code,omitempty"`
	Output       string     `json:"output"`
	Truncated    bool       `json:"output_truncated"`
	// OutputPrunedAt is when retention removed the output
	// (state.retention.step_output); nil while it is as recorded.
	OutputPrunedAt *time.Time `json:"output_pruned_at,omitempty"`
	Detail         string     `json:"detail"`
	// OutputOffset is how many bytes were dropped from the start of the
	// output to keep its tail: where Output starts in all the step printed.
	OutputOffset int64 `json:"output_offset,omitempty"`
}

// WebhookEvent is one received delivery, whatever became of it.
type WebhookEvent struct {
	ID            int64     `json:"id"`
	Forge         string    `json:"forge"`
	DeliveryID    string    `json:"delivery_id"`
	EventType     string    `json:"event_type"`
	Repository    string    `json:"repository"`
	Ref           string    `json:"ref"`
	SHA           string    `json:"sha"`
	Sender        string    `json:"sender"`
	Outcome       Outcome   `json:"outcome"`
	Reason        string    `json:"reason"`
	RemoteAddr    string    `json:"remote_addr"`
	ReceivedAt    time.Time `json:"received_at"`
	DeploymentIDs []int64   `json:"deployment_ids"`
}

// Release is one directory under releases/ (or the in-place checkout).
type Release struct {
	ID int64 `json:"id"`
	Target
	Name         string    `json:"name"`
	SHA          string    `json:"sha"`
	Path         string    `json:"path"`
	State        string    `json:"state"`
	DeploymentID int64     `json:"deployment_id"`
	CreatedAt    time.Time `json:"created_at"`
	// MigrationRevision is the revision the database was at once this
	// release's migrations had run: what a rollback to it migrates down
	// to. "" is unknown (no database, or recorded before schema 2).
	MigrationRevision string `json:"migration_revision"`
}

// Lock is held by one deploying process per target.
type Lock struct {
	Target
	Owner      string    `json:"owner"`
	Host       string    `json:"host"`
	PID        int       `json:"pid"`
	Reason     string    `json:"reason"`
	AcquiredAt time.Time `json:"acquired_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Stats summarises deployments of one target (or all, when Target is empty)
// over a window.
type Stats struct {
	Target
	Since             *time.Time       `json:"since,omitempty"`
	Total             int64            `json:"total"`
	ByStatus          map[Status]int64 `json:"by_status"`
	SuccessRate       float64          `json:"success_rate"`
	MeanDurationMS    float64          `json:"mean_duration_ms"`
	MedianDurationMS  float64          `json:"median_duration_ms"` // approximate: see PercentileRelError
	P95DurationMS     float64          `json:"p95_duration_ms"`    // approximate: see PercentileRelError
	DeploysPerDay     float64          `json:"deploys_per_day"`
	ChangeFailureRate float64          `json:"change_failure_rate"`
	MeanTimeToRestore float64          `json:"mean_time_to_restore_ms"`
	Incidents         int64            `json:"incidents"`
	// PercentileRelError bounds the relative error of the median and p95,
	// which come from a histogram.
	PercentileRelError float64 `json:"percentile_relative_error"`
}

// DeploymentFilter selects deployments, newest first.
type DeploymentFilter struct {
	Fraise      string
	Environment string
	Status      Status
	Since       time.Time // zero: no bound
	Limit       int       // <= 0: a default of 20
	BeforeID    int64     // > 0: only ids below, for paging
}

// WebhookFilter selects webhook events, newest first.
type WebhookFilter struct {
	Forge   string
	Outcome Outcome
	Fraise  string // events linked to a deployment of this fraise
	Limit   int    // <= 0: a default of 20
	// BeforeID > 0: only ids below, for paging.
	BeforeID int64
}

// StatsFilter selects the deployments that Stats summarises.
type StatsFilter struct {
	Fraise      string
	Environment string
	Since       time.Time // zero: all time
}
