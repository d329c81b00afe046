package store

import (
	"context"
	"errors"
	"time"
)

// errRolloutsNotBuilt is the skeleton's answer until the rollout store
// lands (issue 18); this file is deleted then.
var errRolloutsNotBuilt = errors.New("rollouts are not built yet")

func (db *DB) Heartbeat(ctx context.Context, n Node) error { return errRolloutsNotBuilt }
func (db *DB) Nodes(ctx context.Context) ([]Node, error)   { return nil, errRolloutsNotBuilt }
func (db *DB) Rollout(ctx context.Context, id int64) (Rollout, error) {
	return Rollout{}, errRolloutsNotBuilt
}
func (db *DB) Rollouts(ctx context.Context, f RolloutFilter) ([]Rollout, error) {
	return nil, errRolloutsNotBuilt
}
func (db *DB) ResumeRollout(ctx context.Context, id int64, actor string) error {
	return errRolloutsNotBuilt
}
func (db *DB) RolloutVerified(ctx context.Context, id int64, host string, healthy bool, why string) error {
	return errRolloutsNotBuilt
}
func (db *DB) AdvanceRollouts(ctx context.Context, now, liveSince time.Time) (AdvanceResult, error) {
	return AdvanceResult{}, errRolloutsNotBuilt
}
func (db *DB) QueuedDeploymentsFor(ctx context.Context, node string) ([]Deployment, error) {
	return db.QueuedDeployments(ctx)
}
func (db *DB) Listen(ctx context.Context, wake func()) error { return errRolloutsNotBuilt }
