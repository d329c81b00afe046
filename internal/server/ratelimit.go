package server

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter bounds webhook intake per source and in all, with a token
// bucket of each kind. A rate of zero means no limit of that kind.
type limiter struct {
	perSource rate.Limit
	burst     int
	global    *rate.Limiter // nil: no global limit

	mu      sync.Mutex
	sources map[string]*rate.Limiter
}

// maxSources bounds the per-source table, so that a flood from many
// addresses cannot grow it without end; past it, idle entries are swept.
const maxSources = 100_000

func newLimiter(perSource, global float64, burst int) *limiter {
	l := &limiter{perSource: rate.Limit(perSource), burst: max(burst, 1), sources: map[string]*rate.Limiter{}}
	if global > 0 {
		// The global burst is a second's worth: a quiet server may take a
		// spike, but not more than its rate for long.
		l.global = rate.NewLimiter(rate.Limit(global), int(max(global, float64(l.burst))))
	}
	return l
}

// allow takes a token from source's bucket, then from the global one; a
// request refused by its source's bucket takes nothing from the global.
func (l *limiter) allow(source string, now time.Time) bool {
	if l.perSource > 0 && !l.sourceLimiter(source, now).AllowN(now, 1) {
		return false
	}
	return l.global == nil || l.global.AllowN(now, 1)
}

func (l *limiter) sourceLimiter(source string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.sources[source]
	if b == nil {
		if len(l.sources) >= maxSources {
			l.sweep(now)
		}
		b = rate.NewLimiter(l.perSource, l.burst)
		l.sources[source] = b
	}
	return b
}

// sweep drops sources whose bucket has refilled: forgetting them changes
// nothing.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.sources {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.sources, k)
		}
	}
	if len(l.sources) >= maxSources {
		// Everyone is active: start over rather than grow.
		clear(l.sources)
	}
}
