package server

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/fraiseql/fraisier/internal/forge"
	"github.com/fraiseql/fraisier/internal/store"
)

// refusalClass is why a request was refused before it was known to come
// from a forge: the label of fraisier_webhooks_refused_total.
type refusalClass string

const (
	refusedMissingSignature refusalClass = "missing_signature"
	refusedBadSignature     refusalClass = "bad_signature"
	refusedStaleTimestamp   refusalClass = "stale_timestamp"
	refusedNotConfigured    refusalClass = "not_configured"
	refusedContentType      refusalClass = "content_type"
	refusedTooLarge         refusalClass = "too_large"
)

// authRefusal classes an authentication error.
func authRefusal(err error) refusalClass {
	switch {
	case errors.Is(err, forge.ErrMissingSignature):
		return refusedMissingSignature
	case errors.Is(err, forge.ErrStaleTimestamp):
		return refusedStaleTimestamp
	}
	return refusedBadSignature
}

// Refused requests recorded: per client address and in all, per window.
// Anyone can send them, as fast as the rate limit lets, and each would be
// a row: the metrics count them all, the state database keeps a sample
// enough to see who sends what and why.
const (
	refusalsPerSource = 5
	refusalsOverall   = 50
	refusalWindow     = time.Minute
)

// refusalSampler decides which refused requests are recorded: the first
// perSource from each client address and the first overall in all, in
// each window. The first recorded after some were not says how many were
// not, and since when. It holds an entry only for a source recorded in
// the current window, so at most overall of them.
type refusalSampler struct {
	perSource, overall int
	window             time.Duration

	mu          sync.Mutex
	windowStart time.Time
	recorded    int
	sources     map[string]int
	// dropped refusals were not recorded, the first of them at since.
	dropped int64
	since   time.Time
}

func newRefusalSampler(perSource, overall int, window time.Duration) *refusalSampler {
	return &refusalSampler{perSource: perSource, overall: overall, window: window, sources: map[string]int{}}
}

// admit says whether the refusal of a request from source at now is
// recorded and, when it is and others were not, a note saying so.
func (r *refusalSampler) admit(source string, now time.Time) (record bool, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.windowStart) >= r.window || now.Before(r.windowStart) {
		r.windowStart, r.recorded = now, 0
		clear(r.sources)
	}
	if r.recorded >= r.overall || r.sources[source] >= r.perSource {
		if r.dropped == 0 {
			r.since = now
		}
		r.dropped++
		return false, ""
	}
	r.recorded++
	r.sources[source]++
	if r.dropped > 0 {
		note = fmt.Sprintf("%d refused requests were not recorded since %s (over %d per address or %d in all a %s; fraisier_webhooks_refused_total counts every one)",
			r.dropped, r.since.UTC().Format(time.RFC3339), r.perSource, r.overall, r.window)
		r.dropped = 0
	}
	return true, note
}

// refuse answers a request refused before it was authenticated, and
// records it only if the sampler takes it: a flood of forged requests is
// counted in full but stored only in part.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, kind string, start time.Time, it store.Intake, status int, class refusalClass) {
	s.metrics.refused(kind, class)
	if class == refusedBadSignature && s.onRefused != nil {
		s.onRefused(kind, string(class))
	}
	record, note := s.refusals.admit(sourceOf(it.Event.RemoteAddr), start)
	if record {
		if note != "" {
			it.Event.Reason += "; " + note
		}
		s.record(w, r, kind, start, it, status)
		return
	}
	// record is not called: the delivery is off the writer's count here.
	s.writer.coming.Add(-1)
	s.metrics.webhook(kind, store.OutcomeRejected, time.Since(start))
	s.reply(w, status, answer{Outcome: store.OutcomeRejected, Forge: kind,
		Reason: it.Event.Reason + " (not recorded: too many refused requests; they are counted in the metrics)"})
}
