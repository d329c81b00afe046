package queue

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
)

// faultStopDuringRead is the real store with a shutdown injected in the
// middle of one of dispatch's reads: the read cancels Run's context and
// fails as the driver then fails, with context.Canceled.
type faultStopDuringRead struct {
	*store.DB
	in    string
	stop  context.CancelFunc
	fired atomic.Bool
}

func (s *faultStopDuringRead) fault(what string) error {
	if s.in != what || s.fired.Swap(true) {
		return nil
	}
	s.stop()
	return fmt.Errorf("%s: %w", what, context.Canceled)
}

func (s *faultStopDuringRead) SettleQueue(ctx context.Context) (store.QueueOrder, error) {
	if err := s.fault("SettleQueue"); err != nil {
		return store.QueueOrder{}, err
	}
	return s.DB.SettleQueue(ctx)
}

func (s *faultStopDuringRead) QueuedDeploymentsFor(ctx context.Context, node string) ([]store.Deployment, error) {
	if err := s.fault("QueuedDeploymentsFor"); err != nil {
		return nil, err
	}
	return s.DB.QueuedDeploymentsFor(ctx, node)
}

func (s *faultStopDuringRead) Heartbeat(ctx context.Context, n store.Node) error {
	if err := s.fault("Heartbeat"); err != nil {
		return err
	}
	return s.DB.Heartbeat(ctx, n)
}

func (s *faultStopDuringRead) AdvanceRollouts(ctx context.Context, now, liveSince time.Time) (store.AdvanceResult, error) {
	if err := s.fault("AdvanceRollouts"); err != nil {
		return store.AdvanceResult{}, err
	}
	return s.DB.AdvanceRollouts(ctx, now, liveSince)
}

// TestStopDuringReadLogsNoError: a read of the queue, a heartbeat or
// a pass over the rollouts that shutdown cancels is no error to log (the
// rollout benchmark counted such errors of stopping nodes).
func TestStopDuringReadLogsNoError(t *testing.T) {
	for _, in := range []string{"SettleQueue", "QueuedDeploymentsFor", "Heartbeat", "AdvanceRollouts"} {
		t.Run(in, func(t *testing.T) {
			f := newFixture(t, "0")
			owner, err := deploy.CurrentOwner()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := &faultStopDuringRead{DB: f.db, in: in, stop: cancel}
			var (
				mu     sync.Mutex
				errors bytes.Buffer
			)
			log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &errors}, &slog.HandlerOptions{Level: slog.LevelError}))
			r := &Runner{Store: s, Config: f.cfg, Collab: deploy.RealCollaborators(nil), Owner: owner, Log: log}
			loop := NewRolloutLoop(r, s, store.Node{Name: "web-1"}, false, log)
			loopDone := RunRolloutLoop(ctx, loop, r, log)
			if err := r.Run(ctx); err != nil {
				t.Fatalf("Run: %v", err)
			}
			<-loopDone
			if !s.fired.Load() {
				t.Fatalf("the shutdown was never injected in %s", in)
			}
			mu.Lock()
			defer mu.Unlock()
			if errors.Len() > 0 {
				t.Errorf("error logged for a read cancelled by the shutdown:\n%s", errors.String())
			}
		})
	}
}

// lockedWriter serialises writes to a buffer.
type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
