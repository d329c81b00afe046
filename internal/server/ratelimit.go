package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// bucket is a token bucket: rate tokens a second, up to burst.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time, rate, burst float64) bool {
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// limiter bounds webhook intake per client address and in all. A rate of
// zero means no limit of that kind.
type limiter struct {
	perSource, global float64
	burst             float64

	mu        sync.Mutex
	all       bucket
	sources   map[string]*bucket
	lastSweep time.Time
}

// maxSources bounds the per-source table, so that a flood from many
// addresses cannot grow it without end; past it, idle entries are swept.
const maxSources = 100_000

func newLimiter(perSource, global float64, burst int) *limiter {
	return &limiter{perSource: perSource, global: global, burst: float64(max(burst, 1)), sources: map[string]*bucket{}}
}

func (l *limiter) allow(source string, now time.Time) bool {
	if l.perSource <= 0 && l.global <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perSource > 0 {
		b := l.sources[source]
		if b == nil {
			if len(l.sources) >= maxSources {
				l.sweep(now)
			}
			b = &bucket{}
			l.sources[source] = b
		}
		if !b.take(now, l.perSource, l.burst) {
			return false
		}
	}
	if l.global > 0 {
		// The global burst is a second's worth: a quiet server may take a
		// spike, but not more than its rate for long.
		return l.all.take(now, l.global, max(l.global, l.burst))
	}
	return true
}

// sweep drops sources whose bucket has refilled: forgetting them changes
// nothing.
func (l *limiter) sweep(now time.Time) {
	full := time.Duration(l.burst / l.perSource * float64(time.Second))
	for k, b := range l.sources {
		if now.Sub(b.last) > full {
			delete(l.sources, k)
		}
	}
	l.lastSweep = now
	if len(l.sources) >= maxSources {
		// Everyone is active: start over rather than grow.
		clear(l.sources)
	}
}

// clientAddr is the address a request comes from: the peer, or when the
// peer is a trusted proxy, the nearest address in X-Forwarded-For that is
// not one. Anyone can write X-Forwarded-For, so it is believed only from
// configured proxies.
func (s *Server) clientAddr(r *http.Request) string {
	peer := r.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	addr, err := netip.ParseAddr(peer)
	if err != nil || !s.trusted(addr) {
		if peer == "" || peer == "@" {
			return "unix"
		}
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	var all []string
	for _, h := range hops {
		for _, a := range strings.Split(h, ",") {
			all = append(all, strings.TrimSpace(a))
		}
	}
	for i := len(all) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(all[i])
		if err != nil {
			// Garbage in the chain: what the trusted proxy saw is all we
			// can believe.
			return addr.String()
		}
		if !s.trusted(a) {
			return a.String()
		}
		addr = a
	}
	return addr.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func parseProxies(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range cidrs {
		if !strings.Contains(c, "/") {
			a, err := netip.ParseAddr(c)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// sourceOf is what the rate limit, the body budget and the refusal sample
// count a client address as: an IPv4 address itself, and for IPv6 its /64,
// the block one site is given, so that a host cannot become thousands of
// sources by changing the last bits of its address.
func sourceOf(client string) string {
	addr, err := netip.ParseAddr(client)
	if err != nil || !addr.Is6() || addr.Is4In6() {
		return client
	}
	p, err := addr.Prefix(64)
	if err != nil {
		return client
	}
	return p.String()
}
