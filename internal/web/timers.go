package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// JobKey names one scheduled job of a target.
type JobKey struct {
	store.Target
	Job string
}

// TimerState is what systemd says now of a scheduled job's timer.
type TimerState struct {
	// Installed is false when systemd does not know the timer: the
	// environment was never deployed, or its jobs were removed.
	Installed bool
	// Active is true while the timer is armed.
	Active bool
	// Running is true while the job's service runs.
	Running bool
	// Next is when the timer fires next; zero when none is scheduled.
	Next time.Time
	// Last is when it last fired; zero if never.
	Last time.Time
	// Result is how the last run ended ("success", "exit-code"...).
	Result string
	// Err says why systemd could not be asked; the fields above are then
	// unknown.
	Err string
}

// AskTimers asks systemd about the timers of the scheduled jobs cfg
// configures, one entry a job; it should stop when ctx is done.
type AskTimers func(ctx context.Context, cfg *config.Config) map[JobKey]TimerState

// Timers answers the jobs page from Ask, with a deadline and a short-lived
// cache, so that the page stays fast when systemd is slow or gone. A
// Timers is shared by the requests of a dashboard; make one with
// NewTimers.
type Timers struct {
	Ask AskTimers
	// Timeout bounds a page's wait for an answer (default 2 s); TTL is
	// how long an answer, or a failure to get one, is reused (default
	// 10 s).
	Timeout, TTL time.Duration

	// turn is held by whoever reads or refreshes the cache.
	turn chan struct{}
	cfg  *config.Config
	at   time.Time
	last map[JobKey]TimerState
	err  error
}

// NewTimers wraps ask with the default deadline and cache; nil when ask
// is nil.
func NewTimers(ask AskTimers) *Timers {
	if ask == nil {
		return nil
	}
	return &Timers{Ask: ask, turn: make(chan struct{}, 1)}
}

// errNoTimers is why the jobs page cannot say what systemd says.
var errNoTimers = errors.New("this server does not ask systemd")

// States returns what systemd says of cfg's jobs, or why it cannot be
// told. An answer is asked in the background, so that a page waits at
// most Timeout even when Ask does not heed its context; the answer that
// comes later fills the cache.
func (t *Timers) States(ctx context.Context, cfg *config.Config) (map[JobKey]TimerState, error) {
	if t == nil || t.Ask == nil || t.turn == nil {
		return nil, errNoTimers
	}
	timeout, ttl := t.Timeout, t.TTL
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	late := fmt.Errorf("systemd did not answer within %s", timeout)
	wait := time.NewTimer(timeout)
	defer wait.Stop()
	select {
	case t.turn <- struct{}{}:
	case <-wait.C:
		return nil, late
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if t.cfg == cfg && time.Since(t.at) < ttl {
		m, err := t.last, t.err
		<-t.turn
		return m, err
	}
	type answer struct {
		m   map[JobKey]TimerState
		err error
	}
	res := make(chan answer, 1)
	go func() {
		defer func() { <-t.turn }()
		askCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		m := t.Ask(askCtx, cfg)
		t.cfg, t.at, t.last, t.err = cfg, time.Now(), m, nil
		if askCtx.Err() != nil {
			t.last, t.err = nil, late
		}
		res <- answer{t.last, t.err}
	}()
	select {
	case a := <-res:
		return a.m, a.err
	case <-wait.C:
		return nil, late
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
