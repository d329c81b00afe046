package server

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestRefusalSampler: per window, the first refusals of each address and
// in all are recorded; the first recorded after some were not says how
// many were not, and since when; the table of addresses stays bounded.
func TestRefusalSampler(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	type try struct {
		source string
		at     time.Duration // after t0
		record bool
		note   string // substring of the note; "" for none
	}
	s := time.Second
	tests := []struct {
		name               string
		perSource, overall int
		tries              []try
	}{
		{"per address", 2, 10, []try{
			{"a", 0, true, ""}, {"a", 1 * s, true, ""}, {"a", 2 * s, false, ""}, {"a", 3 * s, false, ""},
			{"b", 4 * s, true, "2 refused requests were not recorded since 2025-03-01T12:00:02Z"},
			{"b", 5 * s, true, ""}, {"b", 6 * s, false, ""}, {"a", 7 * s, false, ""},
		}},
		{"in all", 2, 3, []try{
			{"a", 0, true, ""}, {"b", 1 * s, true, ""}, {"c", 2 * s, true, ""}, {"d", 3 * s, false, ""}, {"e", 4 * s, false, ""},
		}},
		{"next window", 2, 3, []try{
			{"a", 0, true, ""}, {"a", 1 * s, true, ""}, {"a", 2 * s, false, ""}, {"a", 59 * s, false, ""},
			{"a", 62 * s, true, "2 refused requests were not recorded since 2025-03-01T12:00:02Z"},
			{"a", 63 * s, true, ""}, {"a", 64 * s, false, ""},
		}},
		{"the clock going back starts a window", 2, 3, []try{
			{"a", time.Hour, true, ""}, {"a", time.Hour, true, ""}, {"a", time.Hour, false, ""},
			{"a", 0, true, "1 refused requests were not recorded since 2025-03-01T13:00:00Z"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRefusalSampler(tc.perSource, tc.overall, time.Minute)
			for i, tr := range tc.tries {
				record, note := r.admit(tr.source, t0.Add(tr.at))
				if record != tr.record || (tr.note == "") != (note == "") || !strings.Contains(note, tr.note) {
					t.Errorf("try %d (%s at %s): record %v, note %q; want %v, %q", i, tr.source, tr.at, record, note, tr.record, tr.note)
				}
			}
		})
	}
	t.Run("bounded table", func(t *testing.T) {
		r := newRefusalSampler(2, 3, time.Minute)
		for i := range 10000 {
			r.admit(fmt.Sprint("192.0.2.", i), t0.Add(time.Duration(i)*time.Millisecond))
		}
		if len(r.sources) > 3 {
			t.Errorf("%d addresses held, want at most 3", len(r.sources))
		}
	})
}

// TestRefusalFloodIsSampled: a flood of forged deliveries, from one
// address and from many, is answered 401 each time, counted in full in
// the metrics, and stored only up to the sample's bounds; a valid
// delivery is still recorded.
func TestRefusalFloodIsSampled(t *testing.T) {
	text := strings.Replace(fmt.Sprintf(intakeConfig, "0", "1", ""), "trusted_proxies: [10.9.0.0/16]", "trusted_proxies: [127.0.0.1/32]", 1)
	f := newIntakeWith(t, text)
	push := payload(t, "github_push")
	const fromOne, sources, fromEach = 600, 40, 10
	flood := func(source string, n int, wg *sync.WaitGroup) {
		defer wg.Done()
		for i := range n {
			d := githubDelivery("push", fmt.Sprintf("forged-%s-%d", source, i), "not-the-secret", push)
			d.headers["X-Forwarded-For"] = source
			if status, a := f.send(d); status != 401 || a.Outcome != store.OutcomeRejected {
				t.Errorf("forged delivery from %s: %d %s", source, status, a.Outcome)
				return
			}
		}
	}
	began := time.Now()
	var wg sync.WaitGroup
	wg.Add(1 + sources)
	go flood("192.0.2.1", fromOne, &wg)
	for i := range sources {
		go flood(fmt.Sprint("198.51.100.", i+1), fromEach, &wg)
	}
	wg.Wait()
	if took := time.Since(began); took >= refusalWindow {
		t.Skipf("the flood took %s, longer than the sample's window", took)
	}
	status, a := f.send(githubDelivery("push", "real-1", "gh-secret-0123456789", push))
	if status != 202 {
		t.Fatalf("valid push after the flood: %d %s (%s)", status, a.Outcome, a.Reason)
	}

	stored := map[string]int{}
	total := 0
	accepted := false
	for _, e := range f.events() {
		switch {
		case e.Outcome == store.OutcomeRejected:
			stored[e.RemoteAddr]++
			total++
		case e.DeliveryID == "real-1":
			accepted = e.Outcome == store.OutcomeAccepted
		}
	}
	if !accepted {
		t.Errorf("the valid push was not recorded accepted")
	}
	for addr, n := range stored {
		if n > refusalsPerSource {
			t.Errorf("%d refusals from %s stored, want at most %d", n, addr, refusalsPerSource)
		}
	}
	if total > refusalsOverall || total == 0 {
		t.Errorf("%d refusals stored of %d, want 1 to %d", total, fromOne+sources*fromEach, refusalsOverall)
	}
	_, metrics := f.get("/metrics", "")
	m := regexp.MustCompile(`fraisier_webhooks_refused_total\{forge="github",reason="bad_signature"\} (\d+)`).FindStringSubmatch(metrics)
	if m == nil {
		t.Fatalf("no fraisier_webhooks_refused_total for github's bad signatures in /metrics")
	}
	if n, _ := strconv.Atoi(m[1]); n != fromOne+sources*fromEach {
		t.Errorf("fraisier_webhooks_refused_total counts %d, want every one of the %d", n, fromOne+sources*fromEach)
	}
	t.Logf("%d forged deliveries, %d stored (%d addresses)", fromOne+sources*fromEach, total, len(stored))
}

// TestIPv6SourcesAreTheirSlash64: addresses of one IPv6 /64 are one source
// to the rate limit (and the body budget and the refusal sample, which
// count sources the same way): one host changing the last bits of its
// address is still one client.
func TestIPv6SourcesAreTheirSlash64(t *testing.T) {
	for in, want := range map[string]string{
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::ffff":   "2001:db8:1:2::/64",
		"192.0.2.1":            "192.0.2.1",
		"::ffff:192.0.2.1":     "::ffff:192.0.2.1",
		"unix":                 "unix",
	} {
		if got := sourceOf(in); got != want {
			t.Errorf("sourceOf(%s) = %s, want %s", in, got, want)
		}
	}
	text := strings.Replace(fmt.Sprintf(intakeConfig, "1", "3", ""), "trusted_proxies: [10.9.0.0/16]", "trusted_proxies: [127.0.0.1/32]", 1)
	f := newIntakeWith(t, text)
	push := payload(t, "github_push")
	limited := 0
	for i := range 10 {
		d := githubDelivery("push", fmt.Sprintf("v6-%d", i), "not-the-secret", push)
		d.headers["X-Forwarded-For"] = fmt.Sprintf("2001:db8:7:7::%x", i+1)
		if status, _ := f.send(d); status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited < 6 {
		t.Errorf("%d of 10 requests from one /64 rate limited, want at least 6 (burst 3)", limited)
	}
	// Another /64 is another source.
	d := githubDelivery("push", "v6-other", "not-the-secret", push)
	d.headers["X-Forwarded-For"] = "2001:db8:8:8::1"
	if status, _ := f.send(d); status == http.StatusTooManyRequests {
		t.Errorf("a request from another /64 was rate limited")
	}
}
