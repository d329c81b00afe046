package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// logFeeds shares one poll of the state database among the clients
// following the same deployment's live log, so that a hundred watchers
// cost the database what one does.
type logFeeds struct {
	store Store
	log   *slog.Logger
	every time.Duration
	// max bounds the clients following live logs at once.
	max int

	mu       sync.Mutex
	feeds    map[int64]*logFeed
	watchers int
	// stopping is closed when the server shuts down: streams end, and
	// their clients resume from another instance.
	stopping chan struct{}
	stopped  bool
}

// logSnap is what the state database said of a deployment at one poll.
// It is never changed once published: next is closed when a newer one
// replaces it.
type logSnap struct {
	ready bool // false until the first poll answered
	d     store.Deployment
	steps []store.Step
	err   error
	next  chan struct{}
}

// logFeed is one deployment's poll and its latest snapshot.
type logFeed struct {
	users int
	stop  context.CancelFunc

	mu  sync.Mutex
	cur *logSnap
}

func newLogFeeds(db Store, log *slog.Logger, every time.Duration, max int) *logFeeds {
	return &logFeeds{store: db, log: log, every: every, max: max, feeds: map[int64]*logFeed{}, stopping: make(chan struct{})}
}

// stop ends every stream, at shutdown.
func (l *logFeeds) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.stopped = true
		close(l.stopping)
	}
}

// watch returns the feed of deployment id, polling it from now on if no
// one was; release must be called once the watcher leaves. ok is false
// when max clients already watch.
func (l *logFeeds) watch(id int64) (feed *logFeed, release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.watchers >= l.max {
		return nil, nil, false
	}
	l.watchers++
	f := l.feeds[id]
	if f == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f = &logFeed{stop: cancel, cur: &logSnap{next: make(chan struct{})}}
		l.feeds[id] = f
		go l.poll(ctx, id, f)
	}
	f.users++
	return f, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.watchers--
		if f.users--; f.users == 0 {
			f.stop()
			delete(l.feeds, id)
		}
	}, true
}

// latest is the feed's newest snapshot.
func (f *logFeed) latest() *logSnap {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

func (f *logFeed) publish(s *logSnap) {
	s.next = make(chan struct{})
	f.mu.Lock()
	old := f.cur
	f.cur = s
	f.mu.Unlock()
	close(old.next)
}

// stepsNotifier is what a store offers when it can say that a step
// changed in this process: a live log then wakes at once rather than at
// its next poll.
type stepsNotifier interface {
	StepsChanged() <-chan struct{}
}

// logWakeGap is the least time between two reads of one deployment when
// changes wake the feed, so that a burst of changes costs a read per gap.
const logWakeGap = 5 * time.Millisecond

// poll reads the deployment and its steps every l.every, and at each
// change the store announces, until ctx ends or the deployment ended,
// publishing each change.
func (l *logFeeds) poll(ctx context.Context, id int64, f *logFeed) {
	t := time.NewTicker(l.every)
	defer t.Stop()
	notifier, _ := l.store.(stepsNotifier)
	for {
		// Taken before the read: a change landing during it wakes the
		// next wait.
		var changed <-chan struct{}
		if notifier != nil {
			changed = notifier.StepsChanged()
		}
		read := time.Now()
		s := &logSnap{ready: true}
		s.d, s.err = l.store.Deployment(ctx, id)
		if s.err == nil {
			s.steps, s.err = l.store.Steps(ctx, id)
		}
		if ctx.Err() != nil {
			return
		}
		if s.err != nil {
			l.log.Error("live log: read the deployment", "deployment", id, "err", s.err)
		}
		if cur := f.latest(); !cur.ready || s.err != nil || !sameLog(cur, s) {
			f.publish(s)
		}
		if s.err == nil && s.d.FinishedAt != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
			select {
			case <-ctx.Done():
				return
			case <-time.After(logWakeGap - time.Since(read)):
			}
		}
	}
}

// sameLog says whether two polls would send the same events.
func sameLog(a, b *logSnap) bool {
	if a.err != nil || a.d.Status != b.d.Status || (a.d.FinishedAt == nil) != (b.d.FinishedAt == nil) || len(a.steps) != len(b.steps) {
		return false
	}
	for i, s := range a.steps {
		t := b.steps[i]
		if s.ID != t.ID || s.Status != t.Status || (s.FinishedAt == nil) != (t.FinishedAt == nil) ||
			s.OutputOffset != t.OutputOffset || len(s.Output) != len(t.Output) {
			return false
		}
	}
	return true
}
