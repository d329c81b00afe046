package server

import (
	"errors"
	"io"
	"sync"
	"time"
)

// bodyTimeout is how long a webhook body may take to arrive once its
// headers have: forges send a few kilobytes at once, and a client that
// trickles its body holds budget and a connection while it does.
const bodyTimeout = 5 * time.Second

// bodyPrealloc is the most a body's buffer is grown to before its bytes
// arrive: enough for what forges send in one allocation, little for a
// client that announces a large body and sends nothing.
const bodyPrealloc = 64 << 10

// bodyBudget bounds the request-body bytes held at once, per client
// address and in all. Only bytes read count: a client that announces a
// large body and sends little holds little, and no client can take more
// than its share of what the others need. A source is in the table only
// while it holds bytes, so its size is bounded by the requests in flight.
type bodyBudget struct {
	total, perSource int64

	mu      sync.Mutex
	used    int64
	sources map[string]int64
}

func newBodyBudget(total, perSource int64) *bodyBudget {
	return &bodyBudget{total: total, perSource: perSource, sources: map[string]int64{}}
}

func (b *bodyBudget) take(source string, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	held := b.sources[source]
	if b.used+n > b.total || held+n > b.perSource {
		return false
	}
	b.used += n
	b.sources[source] = held + n
	return true
}

func (b *bodyBudget) give(source string, n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if held := b.sources[source] - n; held > 0 {
		b.sources[source] = held
	} else {
		delete(b.sources, source)
	}
}

// errBodyBudget is returned by a budgetedBody when its source, or the
// server, holds all the body bytes it may.
var errBodyBudget = errors.New("too many request bodies being read at once")

// budgetedBody reserves each chunk of a body against the budget as it is
// read; release gives all of it back.
type budgetedBody struct {
	r      io.Reader
	budget *bodyBudget
	source string
	held   int64
}

func (b *budgetedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		if !b.budget.take(b.source, int64(n)) {
			return 0, errBodyBudget
		}
		b.held += int64(n)
	}
	return n, err
}

func (b *budgetedBody) release() {
	b.budget.give(b.source, b.held)
	b.held = 0
}
