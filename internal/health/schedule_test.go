package health

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The scheduler's timing is tested in a synctest bubble with fake probes, so
// that minutes of retries take no real time and every duration is exact.
// Real sockets are exercised in probe_test.go, outside any bubble.

// script returns a probe that answers the n-th try with results[n-1] and
// fails every try after the script ends. A result of errHang makes the try
// block until its context is done, like a server that never answers.
func script(results ...error) (probe, *int) {
	calls := new(int)
	return func(ctx context.Context) (int, error) {
		*calls++
		err := errors.New("still down")
		if *calls <= len(results) {
			err = results[*calls-1]
		}
		if errors.Is(err, errHang) {
			<-ctx.Done()
			return 0, ctx.Err()
		}
		return 0, err
	}, calls
}

var errHang = errors.New("hang")

// tried is an Attempt without its wall-clock start, relative to the bubble's
// beginning instead.
type tried struct {
	N    int
	At   time.Duration
	Took time.Duration
	OK   bool
	Err  string
}

func TestSchedule(t *testing.T) {
	down := errors.New("connection refused")
	tests := []struct {
		name        string
		check       Check
		results     []error
		cancelAfter time.Duration // cancel the caller's ctx this long after the start
		want        []tried
		wantElapsed time.Duration
		wantReason  Reason // empty: success
		wantMsg     string
	}{
		{
			name:    "healthy first try",
			check:   Check{},
			results: []error{nil},
			want:    []tried{{N: 1, OK: true}},
		},
		{
			name:        "healthy on the third try",
			check:       Check{Interval: 2 * time.Second},
			results:     []error{down, down, nil},
			want:        []tried{{N: 1, Err: "connection refused"}, {N: 2, At: 2 * time.Second, Err: "connection refused"}, {N: 3, At: 4 * time.Second, OK: true}},
			wantElapsed: 4 * time.Second,
		},
		{
			name:        "retries exhausted",
			check:       Check{Retries: 2},
			want:        []tried{{N: 1, Err: "still down"}, {N: 2, At: time.Second, Err: "still down"}, {N: 3, At: 2 * time.Second, Err: "still down"}},
			wantElapsed: 2 * time.Second,
			wantReason:  ReasonRetriesExhausted,
			wantMsg:     "health: unit api.service: still down (3 tries in 2s)",
		},
		{
			name:       "no retries",
			check:      Check{Retries: NoRetries},
			want:       []tried{{N: 1, Err: "still down"}},
			wantReason: ReasonRetriesExhausted,
			wantMsg:    "health: unit api.service: still down (1 try in 0s)",
		},
		{
			// 10 retries a second apart would take 10s; the deadline stops
			// them after the try at 3s, since one at 4s would start too late.
			name:        "deadline shorter than retries times interval",
			check:       Check{Deadline: 3500 * time.Millisecond},
			want:        []tried{{N: 1, Err: "still down"}, {N: 2, At: time.Second, Err: "still down"}, {N: 3, At: 2 * time.Second, Err: "still down"}, {N: 4, At: 3 * time.Second, Err: "still down"}},
			wantElapsed: 3 * time.Second,
			wantReason:  ReasonDeadline,
			wantMsg:     "health: unit api.service: still down (4 tries in 3s, deadline passed)",
		},
		{
			// The second try has 1s of deadline left, less than its 2s
			// timeout: it is cut so that the deadline holds exactly.
			name:        "hanging probe cut by timeout, last try by deadline",
			check:       Check{Timeout: 2 * time.Second, Deadline: 4 * time.Second},
			results:     []error{errHang, errHang},
			want:        []tried{{N: 1, Took: 2 * time.Second, Err: "no answer within 2s"}, {N: 2, At: 3 * time.Second, Took: time.Second, Err: "no answer within 1s (cut to fit the deadline)"}},
			wantElapsed: 4 * time.Second,
			wantReason:  ReasonDeadline,
		},
		{
			name:        "start delay does not count against the deadline",
			check:       Check{StartDelay: 30 * time.Second, Deadline: 1500 * time.Millisecond},
			want:        []tried{{N: 1, At: 30 * time.Second, Err: "still down"}, {N: 2, At: 31 * time.Second, Err: "still down"}},
			wantElapsed: 31 * time.Second,
			wantReason:  ReasonDeadline,
		},
		{
			name:        "canceled between tries",
			check:       Check{},
			cancelAfter: 2500 * time.Millisecond,
			want:        []tried{{N: 1, Err: "still down"}, {N: 2, At: time.Second, Err: "still down"}, {N: 3, At: 2 * time.Second, Err: "still down"}},
			wantElapsed: 2500 * time.Millisecond,
			wantReason:  ReasonCanceled,
			wantMsg:     "health: unit api.service: still down (3 tries in 2.5s, canceled: context canceled)",
		},
		{
			name:        "canceled during a hanging try",
			check:       Check{},
			results:     []error{errHang},
			cancelAfter: 1500 * time.Millisecond,
			want:        []tried{{N: 1, Took: 1500 * time.Millisecond, Err: "context canceled"}},
			wantElapsed: 1500 * time.Millisecond,
			wantReason:  ReasonCanceled,
		},
		{
			name:        "canceled during the start delay",
			check:       Check{StartDelay: 10 * time.Second},
			cancelAfter: time.Second,
			wantElapsed: time.Second,
			wantReason:  ReasonCanceled,
			wantMsg:     "health: unit api.service: canceled before the first try: context canceled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tt.cancelAfter > 0 {
					time.AfterFunc(tt.cancelAfter, cancel)
				}
				c := tt.check
				c.Kind, c.Units = KindUnit, []string{"api.service"}
				p, _ := script(tt.results...)
				var observed []Attempt
				begin := time.Now()

				rep, err := schedule(ctx, c.withDefaults(), p, func(a Attempt) { observed = append(observed, a) })

				if diff := cmp.Diff(tt.want, relative(begin, rep.Attempts)); diff != "" {
					t.Errorf("attempts (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(rep.Attempts, observed); diff != "" {
					t.Errorf("observer saw (-report +observed):\n%s", diff)
				}
				if rep.Elapsed != tt.wantElapsed {
					t.Errorf("elapsed %s, want %s", rep.Elapsed, tt.wantElapsed)
				}
				if rep.OK != (tt.wantReason == "") {
					t.Errorf("report OK %v, want %v", rep.OK, tt.wantReason == "")
				}
				checkFailure(t, err, tt.wantReason, len(tt.want), tt.wantMsg)
			})
		})
	}
}

// checkFailure asserts err is nil for an empty reason, else a *Failure with
// that reason which wraps context.Canceled exactly when it was canceled.
func checkFailure(t *testing.T, err error, reason Reason, attempts int, msg string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("err = %v (%T), want *Failure", err, err)
	}
	if f.Reason != reason || f.Attempts != attempts {
		t.Errorf("failure reason %q after %d tries, want %q after %d", f.Reason, f.Attempts, reason, attempts)
	}
	if got, want := errors.Is(err, context.Canceled), reason == ReasonCanceled; got != want {
		t.Errorf("errors.Is(err, context.Canceled) = %v, want %v", got, want)
	}
	if msg != "" && err.Error() != msg {
		t.Errorf("message\n got %s\nwant %s", err, msg)
	}
}

func relative(begin time.Time, as []Attempt) []tried {
	var out []tried
	for _, a := range as {
		out = append(out, tried{N: a.N, At: a.Start.Sub(begin), Took: a.Duration, OK: a.OK, Err: a.Err})
	}
	return out
}

// TestScheduleCallerDeadline: the caller's own deadline (the deploy's step
// timeout) is a cancellation and wraps context.DeadlineExceeded, unlike the
// check's Deadline.
func TestScheduleCallerDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer cancel()
		p, calls := script()
		_, err := schedule(ctx, Check{Kind: KindUnit, Units: []string{"a"}}.withDefaults(), p, nil)
		var f *Failure
		if !errors.As(err, &f) || f.Reason != ReasonCanceled || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want a canceled *Failure wrapping context.DeadlineExceeded", err)
		}
		if *calls != 2 {
			t.Errorf("%d tries, want 2", *calls)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		p, _ := script()
		_, err := schedule(t.Context(), Check{Kind: KindUnit, Units: []string{"a"}, Deadline: 2 * time.Second}.withDefaults(), p, nil)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v: the check's own deadline must not look like the caller's", err)
		}
	})
}

// fakeUnits stands in for the systemd manager: the real one is tested
// against a real systemd user manager in internal/systemd, and this package
// only needs to know how answers turn into tries.
type fakeUnits struct {
	active map[string]int // unit -> the try from which it is active; 0 never
	err    map[string]error
	tries  map[string]int
}

func (f *fakeUnits) IsActive(ctx context.Context, unit string) (bool, error) {
	if f.tries == nil {
		f.tries = map[string]int{}
	}
	f.tries[unit]++
	if err := f.err[unit]; err != nil {
		return false, err
	}
	from := f.active[unit]
	return from > 0 && f.tries[unit] >= from, nil
}

func TestRunUnits(t *testing.T) {
	tests := []struct {
		name     string
		units    []string
		fake     *fakeUnits
		wantOK   bool
		wantN    int
		wantLast string
	}{
		{name: "all active", units: []string{"api.service", "worker.service"}, fake: &fakeUnits{active: map[string]int{"api.service": 1, "worker.service": 1}}, wantOK: true, wantN: 1},
		{name: "active on the second try", units: []string{"api.service"}, fake: &fakeUnits{active: map[string]int{"api.service": 2}}, wantOK: true, wantN: 2},
		{name: "one never active", units: []string{"api.service", "worker.service"}, fake: &fakeUnits{active: map[string]int{"api.service": 1}}, wantN: 3, wantLast: "worker.service is not active"},
		{name: "checker error", units: []string{"api.service"}, fake: &fakeUnits{err: map[string]error{"api.service": errors.New("bus closed")}}, wantN: 3, wantLast: "is-active api.service: bus closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rep, err := Run(t.Context(), Check{Kind: KindUnit, Units: tt.units, Retries: 2}, Options{Units: tt.fake})
				if rep.OK != tt.wantOK || len(rep.Attempts) != tt.wantN {
					t.Fatalf("OK %v after %d tries, want %v after %d (err %v)", rep.OK, len(rep.Attempts), tt.wantOK, tt.wantN, err)
				}
				if tt.wantOK {
					if err != nil {
						t.Fatalf("err = %v", err)
					}
					return
				}
				var f *Failure
				if !errors.As(err, &f) || f.Last != tt.wantLast || f.Kind != KindUnit {
					t.Fatalf("err = %v, want a unit *Failure whose last try says %q", err, tt.wantLast)
				}
			})
		})
	}
}

func TestFailureMessage(t *testing.T) {
	f := &Failure{Kind: KindURL, Target: "GET http://127.0.0.1:8081/health", Attempts: 11, Last: "status 500, want 200", Reason: ReasonRetriesExhausted, Elapsed: 10213 * time.Millisecond}
	want := "health: GET http://127.0.0.1:8081/health: status 500, want 200 (11 tries in 10.2s)"
	if f.Error() != want {
		t.Errorf("got  %s\nwant %s", f, want)
	}
	if f.Unwrap() != nil {
		t.Errorf("an exhausted check wraps %v", f.Unwrap())
	}
}

func ExampleFailure() {
	f := &Failure{Target: "tcp 127.0.0.1:5432", Attempts: 4, Last: "connection refused", Reason: ReasonDeadline, Elapsed: 3 * time.Second}
	fmt.Println(f)
	// Output: health: tcp 127.0.0.1:5432: connection refused (4 tries in 3s, deadline passed)
}
