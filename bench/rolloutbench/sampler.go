package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// watcher watches the database from outside the nodes: it counts the
// queue notifications (it LISTENs as a node does) and samples, every
// 100 ms, the nodes' connections in pg_stat_activity.
type watcher struct {
	notifications                atomic.Int64
	mu                           sync.Mutex
	peak, peakListen, peakActive int
	// postmaster is the server's PID, for its CPU time (0: unknown).
	postmaster int
	stop       context.CancelFunc
	done       sync.WaitGroup
}

// watch starts the watcher on the database at url; stop it with close.
func watch(ctx context.Context, url string) (*watcher, error) {
	listen, err := pgx.Connect(ctx, url+"&application_name=rolloutbench-listen")
	if err != nil {
		return nil, err
	}
	if _, err := listen.Exec(ctx, "LISTEN fraisier_queue"); err != nil {
		listen.Close(ctx)
		return nil, err
	}
	sample, err := pgx.Connect(ctx, url+"&application_name=rolloutbench-sample")
	if err != nil {
		listen.Close(ctx)
		return nil, err
	}
	postmaster, err := postmasterOf(ctx, sample)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rolloutbench: PostgreSQL's CPU time is not measured:", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{stop: cancel, postmaster: postmaster}
	w.done.Add(2)
	go func() {
		defer w.done.Done()
		defer listen.Close(context.WithoutCancel(ctx))
		for {
			if _, err := listen.WaitForNotification(ctx); err != nil {
				return
			}
			w.notifications.Add(1)
		}
	}()
	go func() {
		defer w.done.Done()
		defer sample.Close(context.WithoutCancel(ctx))
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.sample(ctx, sample)
			}
		}
	}()
	return w, nil
}

// sample counts the nodes' connections now: all of them, their LISTEN
// connections, and those running a statement.
func (w *watcher) sample(ctx context.Context, conn *pgx.Conn) {
	var all, listen, active int
	err := conn.QueryRow(ctx, `SELECT count(*),
			count(*) FILTER (WHERE application_name = 'fraisier listen'),
			count(*) FILTER (WHERE state = 'active')
		FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'fraisier%'`).Scan(&all, &listen, &active)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.peak, w.peakListen, w.peakActive = max(w.peak, all), max(w.peakListen, listen), max(w.peakActive, active)
}

// peaks are the most connections seen: all, LISTEN, running a statement.
func (w *watcher) peaks() (all, listen, active int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak, w.peakListen, w.peakActive
}

func (w *watcher) close() {
	w.stop()
	w.done.Wait()
}
