package web

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// LiveState is what an environment's health check and units say now.
type LiveState struct {
	// Healthy is nil when the health check was not run; Reason then says
	// why (none configured, nothing deployed...).
	Healthy *bool
	// Reason is why the check failed or was not run.
	Reason string
	// Units are the environment's systemd units, each with whether it is
	// active; UnitsError says why they could not be asked.
	Units      map[string]bool
	UnitsError string
}

// The live probes: at most one per environment every liveEvery, started
// by a view of the overview, each bounded by liveTimeout, liveProbes at
// once.
const (
	liveEvery   = 15 * time.Second
	liveTimeout = 5 * time.Second
	liveProbes  = 4
	// liveEntries bounds the environments the cache remembers.
	liveEntries = 4096
	// freshWait is how long an overview waits for the probes and reads it
	// started before it shows what it has: it stays well within its 50 ms.
	freshWait = 20 * time.Millisecond
)

// liveCache keeps the last answer of each environment's live probe. A
// page reads it and never waits on a probe longer than freshWait: probes
// run in the background, started by the views that find an answer stale.
type liveCache struct {
	probe func(ctx context.Context, fraise, environment string) LiveState
	now   func() time.Time
	sem   chan struct{}
	mu    sync.Mutex
	m     map[store.Target]*liveEntry
}

type liveEntry struct {
	state   LiveState
	checked time.Time
	// probing is closed when the probe under way ends; nil when none is.
	probing chan struct{}
}

func newLiveCache(probe func(ctx context.Context, fraise, environment string) LiveState) *liveCache {
	return &liveCache{probe: probe, now: time.Now, sem: make(chan struct{}, liveProbes), m: map[store.Target]*liveEntry{}}
}

// health is what the overview shows of an environment's health now.
type health struct {
	State LiveState
	// Checked is when the probe answered; zero when it has not yet.
	Checked time.Time
	// Now is when the page was made, to say how long ago Checked was.
	Now time.Time
	// Skip says why no probe runs (nothing deployed, not configured).
	Skip string
	// Seen, when set, is the health another host's own node recorded,
	// judged at Now: this server does not probe that host.
	Seen *store.HealthSeen
}

// recorded is the health a host's own node recorded, as seen at now.
func recorded(s store.HealthSeen, now time.Time) *health {
	h := &health{Seen: &s, Now: now}
	if s.Word != store.HealthUnknown && s.CheckedAt != nil {
		h.Checked = *s.CheckedAt
	}
	return h
}

// get is t's last known state and, when that is stale and no probe of t
// runs, starts one: done is closed when it ends (nil when none started).
func (c *liveCache) get(t store.Target) (h health, done <-chan struct{}) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[t]
	if !ok {
		if len(c.m) >= liveEntries {
			return health{Now: now}, nil
		}
		e = &liveEntry{}
		c.m[t] = e
	}
	h = health{State: e.state, Checked: e.checked, Now: now}
	if e.probing != nil || (!e.checked.IsZero() && now.Sub(e.checked) < liveEvery) {
		return h, nil
	}
	e.probing = make(chan struct{})
	go c.run(t, e.probing)
	return h, e.probing
}

// run probes t, waiting its turn among the probes, and records the answer.
func (c *liveCache) run(t store.Target, done chan struct{}) {
	defer close(done)
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	ctx, cancel := context.WithTimeout(context.Background(), liveTimeout)
	defer cancel()
	st := c.probe(ctx, t.Fraise, t.Environment)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[t]; e != nil {
		e.state, e.checked, e.probing = st, c.now(), nil
	}
}

// Word is the health in one word: healthy, unhealthy or unknown.
func (h health) Word() string {
	switch {
	case h.Seen != nil:
		return h.Seen.Word
	case h.Checked.IsZero() || h.State.Healthy == nil:
		return "unknown"
	case *h.State.Healthy:
		return "healthy"
	}
	return "unhealthy"
}

// Reason says why the health is not healthy, clipped: a health command's
// output is the application's text.
func (h health) Reason() string {
	switch {
	case h.Seen != nil:
		return clipRunes(h.Seen.Detail, 200)
	case h.Skip != "":
		return h.Skip
	case h.Checked.IsZero():
		return "not checked yet"
	case h.State.Healthy != nil && *h.State.Healthy:
		return ""
	case h.State.Reason == "" && h.State.Healthy == nil:
		return "no health check was run"
	}
	return clipRunes(h.State.Reason, 200)
}

// UnitsNote says whether the environment's units are active: the ones
// that are not, or why they could not be asked; empty when it has none.
func (h health) UnitsNote() string {
	if h.Checked.IsZero() || h.Seen != nil {
		return ""
	}
	if h.State.UnitsError != "" {
		return "units not asked: " + clipRunes(h.State.UnitsError, 200)
	}
	var down []string
	for u, active := range h.State.Units {
		if !active {
			down = append(down, u)
		}
	}
	switch {
	case len(h.State.Units) == 0:
		return ""
	case len(down) == 0:
		return "units active"
	}
	sort.Strings(down)
	return "not active: " + clipRunes(strings.Join(down, ", "), 200)
}

// Ago is how long before the page the probe answered, in whole seconds
// (minutes past two minutes); empty before the first answer.
func (h health) Ago() string {
	if h.Checked.IsZero() {
		return ""
	}
	d := max(h.Now.Sub(h.Checked), 0)
	if d < 2*time.Minute {
		return fmt.Sprintf("%d s", int(d.Seconds()))
	}
	return d.Round(time.Minute).String()
}

// By is the node whose probe the health shown comes from, when not this
// server's own.
func (h health) By() string {
	if h.Seen == nil || h.Checked.IsZero() {
		return ""
	}
	return h.Seen.By
}

// clipRunes is s cut to at most n runes, with an ellipsis when cut.
func clipRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j] + "…"
		}
		i++
	}
	return s
}
