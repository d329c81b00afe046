package store

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestPace: a batch slower than MaxHold halves the next, one much quicker
// doubles it, within bounds; with a Share, Prune then leaves the writer to
// others for held × (1 − Share) / Share, ten times as long when it had to
// wait for the writer.
func TestPace(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     PruneOptions
		rows     int
		held     time.Duration
		waited   time.Duration
		wantRows int
		wantWait time.Duration
	}{
		{"slow batch halves", PruneOptions{MaxHold: 2 * time.Millisecond}, 256, 3 * time.Millisecond, 0, 128, 0},
		{"quick batch doubles", PruneOptions{MaxHold: 2 * time.Millisecond}, 256, 400 * time.Microsecond, 0, 512, 0},
		{"in between keeps", PruneOptions{MaxHold: 2 * time.Millisecond}, 256, time.Millisecond, 0, 256, 0},
		{"never below the least", PruneOptions{MaxHold: time.Millisecond}, minBatch, time.Second, 0, minBatch, 0},
		{"never above the most", PruneOptions{MaxHold: time.Second}, maxBatch, time.Microsecond, 0, maxBatch, 0},
		{"default hold", PruneOptions{}, 256, DefaultMaxHold + time.Millisecond, 0, 128, 0},
		{"a tenth of the time", PruneOptions{MaxHold: 2 * time.Millisecond, Share: 0.1}, 256, time.Millisecond, 0, 256, 9 * time.Millisecond},
		{"a fifth of the time", PruneOptions{MaxHold: 2 * time.Millisecond, Share: 0.2}, 256, 2 * time.Millisecond, 0, 256, 8 * time.Millisecond},
		{"a share of 1 never waits", PruneOptions{MaxHold: 2 * time.Millisecond, Share: 1}, 256, time.Millisecond, 0, 256, 0},
		{"others writing: ten times as long", PruneOptions{MaxHold: 2 * time.Millisecond, Share: 0.1}, 256, time.Millisecond, time.Millisecond, 256, 90 * time.Millisecond},
		{"a short wait is no sign", PruneOptions{MaxHold: 2 * time.Millisecond, Share: 0.1}, 256, time.Millisecond, 400 * time.Microsecond, 256, 9 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &pruner{opts: tc.opts, rows: tc.rows}
				start := time.Now()
				if err := p.pace(context.Background(), tc.held, tc.waited); err != nil {
					t.Fatal(err)
				}
				if p.rows != tc.wantRows {
					t.Errorf("next batch %d rows, want %d", p.rows, tc.wantRows)
				}
				if waited := time.Since(start); waited != tc.wantWait {
					t.Errorf("waited %s, want %s", waited, tc.wantWait)
				}
			})
		})
	}
	t.Run("cancelled while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(time.Millisecond, cancel)
			p := &pruner{opts: PruneOptions{Share: 0.01}, rows: 256}
			start := time.Now()
			if err := p.pace(ctx, time.Second, 0); err != context.Canceled {
				t.Errorf("pace: %v, want context.Canceled", err)
			}
			if waited := time.Since(start); waited != time.Millisecond {
				t.Errorf("waited %s after the cancel", waited)
			}
		})
	})
}
