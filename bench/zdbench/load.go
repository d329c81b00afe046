package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// loadSpec is the generator's schedule: rate requests a second, one in
// slowEvery of them a request the app answers after slowFor; each on a
// new connection, failed after timeout.
type loadSpec struct {
	rate      int
	slowEvery int
	slowFor   time.Duration
	timeout   time.Duration
}

// Failure kinds, in the order they are printed.
var failureKinds = []string{"refused", "reset", "timeout", "status", "other"}

// loadResult is what the generator saw of one mode.
type loadResult struct {
	mu                 sync.Mutex
	sent, slowSent     int
	failed, slowFailed int
	byKind             map[string]int
	sentIn, failedIn   map[string]int // by what fraisier was doing when the request was sent
	example            string         // the first failure, as the client saw it
	lateMax            time.Duration  // the generator's worst lag behind its schedule
	maxSlow, maxShort  time.Duration
}

// generator sends requests to base on the spec's fixed schedule without
// waiting for answers (open loop), until stop is closed, then waits for
// every request to end.
type generator struct {
	spec   loadSpec
	base   string
	client *http.Client
	phase  atomic.Value // string: what fraisier is doing
	res    *loadResult
	wg     sync.WaitGroup
}

func newGenerator(spec loadSpec, base string) *generator {
	tr := &http.Transport{
		// A new connection for every request: each one goes through the
		// front's listening socket, which is what a restart threatens.
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: spec.timeout}).DialContext,
	}
	g := &generator{spec: spec, base: base, client: &http.Client{Transport: tr, Timeout: spec.timeout},
		res: &loadResult{byKind: map[string]int{}, sentIn: map[string]int{}, failedIn: map[string]int{}}}
	g.phase.Store("idle")
	return g
}

// run sends until ctx ends, then waits for the requests in flight.
func (g *generator) run(ctx context.Context) *loadResult {
	interval := time.Second / time.Duration(g.spec.rate)
	start := time.Now()
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
				g.wg.Wait()
				return g.res
			case <-time.After(wait):
			}
		} else if ctx.Err() != nil {
			g.wg.Wait()
			return g.res
		}
		if late := time.Since(due); late > g.res.lateMax {
			g.res.lateMax = late
		}
		slow := g.spec.slowEvery > 0 && i%g.spec.slowEvery == g.spec.slowEvery-1
		g.wg.Add(1)
		go g.request(slow, g.phase.Load().(string))
	}
}

func (g *generator) request(slow bool, phase string) {
	defer g.wg.Done()
	url := g.base + "/"
	if slow {
		url = fmt.Sprintf("%s/slow?d=%s", g.base, g.spec.slowFor)
	}
	start := time.Now()
	kind, detail := g.get(url)
	took := time.Since(start)
	r := g.res
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent++
	r.sentIn[phase]++
	if slow {
		r.slowSent++
		r.maxSlow = max(r.maxSlow, took)
	} else {
		r.maxShort = max(r.maxShort, took)
	}
	if kind == "" {
		return
	}
	r.failed++
	if slow {
		r.slowFailed++
	}
	r.byKind[kind]++
	r.failedIn[phase]++
	if r.example == "" {
		r.example = detail
	}
}

// get returns "" when url answered 200 with its whole body, else the kind
// of failure and what the client saw.
func (g *generator) get(url string) (kind, detail string) {
	resp, err := g.client.Get(url)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			return "status", fmt.Sprintf("GET %s: %s", url, resp.Status)
		}
	}
	if err == nil {
		return "", ""
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		kind = "reset"
	case errors.As(err, &ne) && ne.Timeout():
		kind = "timeout"
	default:
		kind = "other"
	}
	return kind, err.Error()
}
