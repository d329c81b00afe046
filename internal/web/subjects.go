package web

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// Subjects reads the subjects of commits (by full SHA) from an
// environment's git mirror; a commit it cannot read is left out.
type Subjects func(ctx context.Context, fraise, environment string, shas ...string) map[string]string

const (
	// subjectEntries bounds the subjects the dashboard remembers.
	subjectEntries = 4096
	// subjectRetry is how long a commit whose subject could not be read
	// waits before it is asked again (its mirror may fetch it meanwhile).
	subjectRetry = time.Minute
	// subjectReads is how many reads run at once; subjectTimeout bounds one.
	subjectReads   = 2
	subjectTimeout = 5 * time.Second
	// subjectRunes is where a subject shown is cut.
	subjectRunes = 100
)

// subjectCache keeps commit subjects by SHA: a commit's subject never
// changes, so each is read once, in the background, and a page only
// looks it up.
type subjectCache struct {
	read  Subjects
	now   func() time.Time
	sem   chan struct{}
	mu    sync.Mutex
	m     map[string]*subjectEntry
	order []string // oldest first, for eviction
}

type subjectEntry struct {
	subject string
	// read is when the subject was read, or found unreadable; zero while
	// the first read runs.
	read    time.Time
	reading chan struct{}
}

func newSubjectCache(read Subjects) *subjectCache {
	return &subjectCache{read: read, now: time.Now, sem: make(chan struct{}, subjectReads), m: map[string]*subjectEntry{}}
}

// get is sha's subject as known now ("" when unknown) and, when it is not
// known and no read of it runs, starts one from t's mirror: done is
// closed when it ends (nil when none started).
func (c *subjectCache) get(t store.Target, sha string) (subject string, done <-chan struct{}) {
	if sha == "" {
		return "", nil
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[sha]
	if !ok {
		if len(c.order) >= subjectEntries {
			delete(c.m, c.order[0])
			c.order = c.order[1:]
		}
		e = &subjectEntry{}
		c.m[sha] = e
		c.order = append(c.order, sha)
	}
	if e.subject != "" || e.reading != nil || (!e.read.IsZero() && now.Sub(e.read) < subjectRetry) {
		return e.subject, nil
	}
	e.reading = make(chan struct{})
	go c.run(t, sha, e, e.reading)
	return "", e.reading
}

// run reads sha's subject from t's mirror and records it.
func (c *subjectCache) run(t store.Target, sha string, e *subjectEntry, done chan struct{}) {
	defer close(done)
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	ctx, cancel := context.WithTimeout(context.Background(), subjectTimeout)
	defer cancel()
	subject := oneLine(c.read(ctx, t.Fraise, t.Environment, sha)[sha])
	c.mu.Lock()
	defer c.mu.Unlock()
	e.subject, e.read, e.reading = clipRunes(subject, subjectRunes), c.now(), nil
}

// oneLine is s's first line, trimmed: a subject is shown on one line.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}
