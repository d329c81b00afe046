package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/queue"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// The server under attack or load runs in a process of its own (this test
// binary, see TestMain), with probes and a memory sampler beside it, so
// that what they measure is the server's alone.

// hxServer is one fraisier serve on a loopback listener.
type hxServer struct {
	t    testing.TB
	root string
	db   *store.DB
	addr string
	base string
	cfg  *config.Config
	pid  int
	// heap is the server process's Go heap in use after a GC: when it was
	// ready, and (after stop) when it stopped.
	heapReady, heapStopped uint64
	// heaps are the server's heap in use (no GC forced), sampled every
	// second while it runs, when asked for (serverProcessOptions).
	mu    sync.Mutex
	heaps []uint64
	stop  func()
}

func (s *hxServer) heapSamples() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.heaps...)
}

// serveEnv makes the test binary a fraisier server (see TestMain): the
// server runs in a process of its own, as in production, so that the
// attacker's or load generator's goroutines and garbage in the test
// process are not the server's, and what the probes, latencies and memory
// figures measure is the server alone.
const serveEnv = "FRAISIER_HX_SERVE_ROOT"

// serverProcessOptions say what the server process runs besides the HTTP
// server.
type serverProcessOptions struct {
	runner      bool // a queue.Runner deploying what is queued (2 at once)
	sampleHeaps bool // report the heap in use every second
}

func startHostileServer(t *testing.T, yaml func(root string) string) *hxServer {
	t.Helper()
	root := t.TempDir()
	return startServerProcess(t, root, yaml(root), serverProcessOptions{})
}

// startServerProcess serves the configuration text from root (its state
// database in root/state) in a process of its own, and opens a second
// handle on that database for the checks.
func startServerProcess(t *testing.T, root, text string, o serverProcessOptions) *hxServer {
	t.Helper()
	cfg, err := config.Parse("fraises.yaml", []byte(text), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "fraises.yaml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+root, fmt.Sprintf("FRAISIER_HX_SERVE_RUNNER=%v", o.runner),
		fmt.Sprintf("FRAISIER_HX_SERVE_HEAPS=%v", o.sampleHeaps))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &hxServer{t: t, root: root, cfg: cfg, pid: cmd.Process.Pid}
	lines := bufio.NewScanner(out)
	ready := false
	for !ready && lines.Scan() {
		k, v, _ := strings.Cut(lines.Text(), " ")
		switch k {
		case "addr":
			s.addr, s.base = v, "http://"+v
		case "ready-heap":
			s.heapReady, _ = strconv.ParseUint(v, 10, 64)
			ready = true
		}
	}
	if !ready {
		in.Close()
		cmd.Wait()
		t.Fatalf("the server process never got ready: %s", clip(stderr.String(), 2000))
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for lines.Scan() {
			k, v, _ := strings.Cut(lines.Text(), " ")
			n, _ := strconv.ParseUint(v, 10, 64)
			s.mu.Lock()
			switch k {
			case "heap":
				s.heaps = append(s.heaps, n)
			case "stopped-heap":
				s.heapStopped = n
			}
			s.mu.Unlock()
		}
	}()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			in.Close()
			<-readDone
			if err := cmd.Wait(); err != nil {
				t.Errorf("server process: %v: %s", err, clip(stderr.String(), 2000))
			}
			if s.db != nil {
				s.db.Close()
			}
		})
	}
	t.Cleanup(s.stop)
	// A second handle on the server's state database, for the checks.
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(root, "state", "fraisier.db")})
	if err != nil {
		t.Fatal(err)
	}
	s.db = db
	return s
}

// serveProcess is the server process's side: serve root's fraises.yaml on
// a free loopback port until stdin closes, with no deploy workers unless
// FRAISIER_HX_SERVE_RUNNER=true. It prints "addr <host:port>", then
// "ready-heap <bytes>" (in use after a GC) once ready, "heap <bytes>"
// every second if FRAISIER_HX_SERVE_HEAPS=true, and "stopped-heap
// <bytes>" once stopped.
func serveProcess(root string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "test server:", err)
		return 1
	}
	text, err := os.ReadFile(filepath.Join(root, "fraises.yaml"))
	if err != nil {
		return fail(err)
	}
	cfg, err := config.Parse("fraises.yaml", text, config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		return fail(err)
	}
	// The CLI fills it; fraisier serve keeps its mirrors beside its database.
	cfg.State.Dir = filepath.Join(root, "state")
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(root, "state", "fraisier.db"), CheckpointEvery: store.ServerCheckpointEvery})
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	var runner *queue.Runner
	if os.Getenv("FRAISIER_HX_SERVE_RUNNER") == "true" {
		owner, err := deploy.CurrentOwner()
		if err != nil {
			return fail(err)
		}
		runner = &queue.Runner{Store: db, Config: cfg, Collab: deploy.RealCollaborators(nil), Owner: owner, MaxConcurrent: 2,
			Poll: 200 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	}
	opts := Options{Config: cfg, Store: db}
	if runner != nil {
		opts.Runner = runner
	}
	srv, err := New(opts)
	if err != nil {
		return fail(err)
	}
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	workDone := make(chan struct{})
	if runner != nil {
		runner.OnFinish = srv.ObserveDeployment
		go func() { defer close(workDone); runner.Run(workCtx) }()
	} else {
		close(workDone)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l, nil) }()
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Printf(format, args...)
	}
	heap := func(gc bool) uint64 {
		if gc {
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	say("addr %s\nready-heap %d\n", l.Addr(), heap(true))
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		if os.Getenv("FRAISIER_HX_SERVE_HEAPS") != "true" {
			return
		}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				say("heap %d\n", heap(false))
			}
		}
	}()
	io.Copy(io.Discard, os.Stdin)
	close(stopSampling)
	<-sampled
	cancel()
	if err := <-done; err != nil {
		return fail(err)
	}
	stopWork()
	<-workDone
	say("stopped-heap %d\n", heap(true))
	return 0
}

// hxProbe measures /health every interval until stop is closed.
type hxProbe struct {
	mu    sync.Mutex
	lat   []time.Duration
	fails []string
}

// probeEnv makes the test binary a health prober (see TestMain): the probe
// runs in a process of its own, so that what it measures is the server's
// answer, not the attacker's goroutines and garbage in the test process
// delaying the prober itself.
const probeEnv = "FRAISIER_HX_PROBE_URL"

// run probes base+"/health" every interval from a child process until
// stop is closed, then collects its measurements.
func (p *hxProbe) run(base string, interval time.Duration, stop <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), probeEnv+"="+base+"/health", fmt.Sprintf("FRAISIER_HX_PROBE_EVERY=%d", interval))
	in, err := cmd.StdinPipe()
	if err != nil {
		p.fail(err.Error())
		return
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		p.fail(err.Error())
		return
	}
	<-stop
	in.Close()
	if err := cmd.Wait(); err != nil {
		p.fail(fmt.Sprintf("probe process: %v: %s", err, clip(out.String(), 300)))
	}
	for _, line := range strings.Split(out.String(), "\n") {
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "ok":
			if ns, err := strconv.ParseInt(rest, 10, 64); err == nil {
				p.mu.Lock()
				p.lat = append(p.lat, time.Duration(ns))
				p.mu.Unlock()
			}
		case "fail":
			p.fail(rest)
		}
	}
}

func (p *hxProbe) fail(msg string) {
	p.mu.Lock()
	p.fails = append(p.fails, msg)
	p.mu.Unlock()
}

// probeProcess is the prober's side: GET url every interval until stdin
// closes, one line per probe ("ok <ns>" or "fail <why>").
func probeProcess(url string) int {
	interval, _ := strconv.ParseInt(os.Getenv("FRAISIER_HX_PROBE_EVERY"), 10, 64)
	if interval <= 0 {
		interval = int64(10 * time.Millisecond)
	}
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	tick := time.NewTicker(time.Duration(interval))
	defer tick.Stop()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for {
		select {
		case <-stop:
			return 0
		case <-tick.C:
		}
		start := time.Now()
		resp, err := c.Get(url)
		d := time.Since(start)
		switch {
		case err != nil:
			fmt.Fprintf(w, "fail %v\n", err)
		case resp.StatusCode != 200:
			fmt.Fprintf(w, "fail %s\n", resp.Status)
		default:
			fmt.Fprintf(w, "ok %d\n", d.Nanoseconds())
		}
		if resp != nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

func (p *hxProbe) summary() (n int, p99, max time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lat), percentile(p.lat, 0.99), percentile(p.lat, 1)
}

func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// memSampler records the server process's RSS.
type memSampler struct {
	pid     int
	mu      sync.Mutex
	rssPeak uint64
}

func (m *memSampler) sample() (rss uint64) {
	rss = procRSS(m.pid)
	m.mu.Lock()
	m.rssPeak = max(m.rssPeak, rss)
	m.mu.Unlock()
	return rss
}

func (m *memSampler) run(interval time.Duration, stop <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			m.sample()
		}
	}
}

// procRSS is process pid's resident set in bytes (VmRSS), 0 where /proc
// is not there.
func procRSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
