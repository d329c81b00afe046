package deploy

import (
	"context"
	"errors"

	"github.com/fraiseql/fraisier/internal/store"
)

// runScheduled is the flow of a scheduled fraise. Not built yet: it says so
// rather than pretend.
func (d *deployment) runScheduled(ctx context.Context) (string, error) {
	return store.StatusFailed, errors.New("scheduled fraises cannot be deployed yet")
}
