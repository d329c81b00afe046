package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// logBench is a server on a real SQLite store with a running deployment
// and a read token.
type logBench struct {
	db        *store.DB
	url, read string
	id, step  int64
}

func newLogBench(b *testing.B) *logBench {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{Path: filepath.Join(b.TempDir(), "state.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	cfg, err := config.Parse("fraises.yaml", []byte("fraises:\n  hello:\n    type: api\n    environments:\n      production: {branch: main, git_repo: /nonexistent, app_path: /srv/hello}\n"),
		config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{Config: cfg, Store: db})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(func() { hs.Close(); srv.Close() })
	_, secret, err := db.CreateAPIToken(ctx, "reader", []store.Scope{{Action: store.ScopeRead}})
	if err != nil {
		b.Fatal(err)
	}
	lb := &logBench{db: db, read: secret}
	lb.id, lb.step = startLogDeployment(b, db)
	lb.url = fmt.Sprintf("%s/api/deployments/%d/log", hs.URL, lb.id)
	return lb
}

// BenchmarkLiveLogLatency: the time from a line's write to the state
// database to its arrival at a watching client, one line at a time,
// written at a random moment of the poll interval.
func BenchmarkLiveLogLatency(b *testing.B) {
	lb := newLogBench(b)
	s, status := openLog(b, lb.url, lb.read, "")
	if status != 200 {
		b.Fatalf("GET log: %d", status)
	}
	defer s.close()
	if e, err := s.next(b); err != nil || e.event != "step" {
		b.Fatalf("first event %+v %v", e, err)
	}
	var delays []time.Duration
	for i := 0; b.Loop(); i++ {
		time.Sleep(rand.N(logPoll))
		at := time.Now()
		if err := lb.db.AppendStepOutput(context.Background(), lb.step, []byte("line "+strconv.Itoa(i)+"\n")); err != nil {
			b.Fatal(err)
		}
		if e, err := s.next(b); err != nil || e.event != "line" {
			b.Fatalf("event %+v %v", e, err)
		}
		delays = append(delays, time.Since(at))
	}
	slices.Sort(delays)
	b.ReportMetric(float64(delays[len(delays)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(delays[len(delays)*95/100].Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(delays[len(delays)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkLiveLogWatchers: what watchers of a deployment whose step has
// 64 KiB of output cost: the time of its output writes (one 80-byte line
// each) and the process's CPU time per second of wall time, with 0 and
// 100 clients following its live log.
func BenchmarkLiveLogWatchers(b *testing.B) {
	for _, n := range []int{0, 100} {
		b.Run("watchers="+strconv.Itoa(n), func(b *testing.B) {
			lb := newLogBench(b)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			line := []byte(fmt.Sprintf("%079d\n", 0))
			for range store.StepOutputCap / len(line) {
				lb.db.AppendStepOutput(ctx, lb.step, line)
			}
			for range n {
				s, status := openLog(b, lb.url, lb.read, "")
				if status != 200 {
					b.Fatalf("GET log: %d", status)
				}
				go func() {
					defer s.close()
					for ctx.Err() == nil {
						if _, err := s.next(b); err != nil {
							return
						}
					}
				}()
			}
			time.Sleep(time.Second) // every watcher past the backlog
			cpu0, wall0 := cpuTime(), time.Now()
			for b.Loop() {
				time.Sleep(5 * time.Millisecond)
				if err := lb.db.AppendStepOutput(ctx, lb.step, line); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Since(wall0)), "cpu-s/s")
		})
	}
}

// cpuTime is the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
