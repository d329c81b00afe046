package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// The live log through its HTTP handler, on a real SQLite store.

// sseEvent is one event as an EventSource would parse it.
type sseEvent struct {
	id, event string
	data      []string
	at        time.Time
}

// sseStream is a live log request read event by event.
type sseStream struct {
	resp *http.Response
	r    *bufio.Reader
}

func openLog(t testing.TB, url, token, lastID string) (*sseStream, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, resp.StatusCode
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	return &sseStream{resp: resp, r: bufio.NewReader(resp.Body)}, resp.StatusCode
}

// next is the next event, skipping comments and retry fields; io.EOF when
// the server closed the stream. A CR anywhere would be a line break to a
// browser, so it fails the test: the framing must never carry one.
func (s *sseStream) next(t testing.TB) (sseEvent, error) {
	t.Helper()
	var e sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return e, err
		}
		if strings.Contains(line, "\r") {
			t.Fatalf("a CR in the stream: %q", line)
		}
		line = strings.TrimSuffix(line, "\n")
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			if line == "" && e.event != "" {
				e.at = time.Now()
				return e, nil
			}
		case "id":
			e.id = value
		case "event":
			e.event = value
		case "data":
			e.data = append(e.data, value)
		case "retry":
		default:
			t.Fatalf("unknown field in %q", line)
		}
	}
}

func (s *sseStream) close() { s.resp.Body.Close() }

// replay rebuilds each step's output from line events, checking that
// each id moves past exactly the line it carries.
type replay struct {
	out  map[string]*strings.Builder
	step string
	off  int64
	ids  []string
}

func newReplay() *replay { return &replay{out: map[string]*strings.Builder{}} }

func (p *replay) add(t *testing.T, e sseEvent) {
	t.Helper()
	if slices.Contains(p.ids, e.id) {
		t.Fatalf("event id %s sent twice", e.id)
	}
	p.ids = append(p.ids, e.id)
	seq, off, _ := strings.Cut(e.id, "-")
	switch e.event {
	case "step":
		if p.out[seq] == nil {
			p.out[seq] = &strings.Builder{}
		}
		p.step, p.off = seq, 0
	case "line":
		n, err := strconv.ParseInt(off, 10, 64)
		if err != nil || seq != p.step {
			t.Fatalf("line id %q in step %s", e.id, p.step)
		}
		line := strings.Join(e.data, "\r")
		switch n - p.off {
		case int64(len(line)) + 1:
			line += "\n"
		case int64(len(line)):
		default:
			t.Fatalf("line %q moves the offset from %d to %d", line, p.off, n)
		}
		p.out[seq].WriteString(line)
		p.off = n
	}
}

// readAll reads events into p until the end event or until stop says so.
func readAll(t *testing.T, s *sseStream, p *replay, stop func(sseEvent) bool) (last sseEvent, lines []sseEvent) {
	t.Helper()
	for {
		e, err := s.next(t)
		if err != nil {
			t.Fatalf("stream ended before the end event: %v (last %+v)", err, last)
		}
		p.add(t, e)
		last = e
		if e.event == "line" {
			lines = append(lines, e)
		}
		if e.event == "end" || stop != nil && stop(e) {
			return last, lines
		}
	}
}

// hostileChunks are step output a deployed tool could print, in the chunks
// it arrives in: CRs, CRLFs, text that looks like SSE fields, lines
// split across chunks, a chunk that ends inside a character, empty lines.
var hostileChunks = []string{
	"plain line\n",
	"data: x\nid: 999-0\nevent: end\nretry: 1\n",
	"progress 10%\rprogress 50%\rprogress 100%\n",
	"crlf line\r\n\n\n",
	"half a ", "line\n",
	"\r\r\n: ping\n",
	"é✓"[:3], "é✓"[3:] + " \x00 nul\n",
	"last, unterminated",
}

func startLogDeployment(t testing.TB, db *store.DB) (int64, int64) {
	t.Helper()
	ctx := context.Background()
	id, err := db.StartDeployment(ctx, store.Deployment{Target: store.Target{Fraise: "hello", Environment: "production"}, Trigger: store.TriggerCLI})
	if err != nil {
		t.Fatal(err)
	}
	step, err := db.StartStep(ctx, id, "fetch")
	if err != nil {
		t.Fatal(err)
	}
	return id, step
}

func finishLogDeployment(t *testing.T, f *apiFixture, id, step int64) {
	t.Helper()
	ctx := context.Background()
	code := 0
	if err := f.db.FinishStep(ctx, step, store.StepSucceeded, &code, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusSucceeded}); err != nil {
		t.Fatal(err)
	}
}

// storedOutput is each step's stored output by seq.
func storedOutput(t *testing.T, db *store.DB, id int64) map[string]string {
	steps, err := db.Steps(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, s := range steps {
		m[strconv.Itoa(s.Seq)] = s.Output
	}
	return m
}

func (p *replay) outputs() map[string]string {
	m := map[string]string{}
	for k, b := range p.out {
		m[k] = b.String()
	}
	return m
}

// TestLiveLogFollowsWrites: lines written while a client reads arrive in
// order, hostile ones intact, and the stream ends with the deployment.
// The delay from a write to its arrival is logged.
func TestLiveLogFollowsWrites(t *testing.T) {
	f := newAPIFixture(t, "0", "1")
	id, step := startLogDeployment(t, f.db)
	s, status := openLog(t, fmt.Sprintf("%s/api/deployments/%d/log", f.url, id), f.tokens["reader"], "")
	if status != 200 {
		t.Fatalf("GET log: %d", status)
	}
	defer s.close()
	var (
		mu      sync.Mutex
		written []time.Time
	)
	go func() {
		for _, c := range hostileChunks {
			time.Sleep(20 * time.Millisecond)
			mu.Lock()
			written = append(written, time.Now())
			mu.Unlock()
			if err := f.db.AppendStepOutput(context.Background(), step, []byte(c)); err != nil {
				t.Error(err)
			}
		}
		time.Sleep(20 * time.Millisecond)
		s2, _ := f.db.StartStep(context.Background(), id, "install")
		f.db.AppendStepOutput(context.Background(), s2, []byte("installing\n"))
		finishLogDeployment(t, f, id, step)
		code := 0
		f.db.FinishStep(context.Background(), s2, store.StepSucceeded, &code, "")
	}()
	p := newReplay()
	end, lines := readAll(t, s, p, nil)
	if end.event != "end" || !strings.Contains(end.data[0], `"status":"succeeded"`) || end.id != "end" {
		t.Fatalf("end event %+v", end)
	}
	if got, want := p.outputs(), storedOutput(t, f.db, id); !maps(got, want) {
		t.Fatalf("replayed output:\n%q\nwant:\n%q", got, want)
	}
	if _, err := s.next(t); err != io.EOF {
		t.Fatalf("the stream goes on after the end: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The first chunk written is the first line received.
	t.Logf("write to arrival of the first line: %v (poll %v)", lines[0].at.Sub(written[0]), logPoll)
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestLiveLogResumes: a client that leaves mid-stream and comes back with
// Last-Event-ID (or ?from=) gets the rest, nothing lost or repeated.
func TestLiveLogResumes(t *testing.T) {
	for _, how := range []string{"header", "query"} {
		t.Run(how, func(t *testing.T) {
			f := newAPIFixture(t, "0", "1")
			id, step := startLogDeployment(t, f.db)
			url := fmt.Sprintf("%s/api/deployments/%d/log", f.url, id)
			p := newReplay()
			for i, c := range hostileChunks[:5] {
				f.db.AppendStepOutput(context.Background(), step, []byte(c))
				if i == 2 {
					s, _ := openLog(t, url, f.tokens["deployer"], "")
					readAll(t, s, p, func(e sseEvent) bool { return e.event == "line" && len(p.ids) >= 3 })
					s.close()
				}
			}
			for _, c := range hostileChunks[5:] {
				f.db.AppendStepOutput(context.Background(), step, []byte(c))
			}
			finishLogDeployment(t, f, id, step)
			last := p.ids[len(p.ids)-1]
			var s *sseStream
			if how == "header" {
				s, _ = openLog(t, url, f.tokens["deployer"], last)
			} else {
				s, _ = openLog(t, url+"?from="+last, f.tokens["deployer"], "")
			}
			defer s.close()
			readAll(t, s, p, nil)
			if got, want := p.outputs(), storedOutput(t, f.db, id); !maps(got, want) {
				t.Fatalf("replayed output:\n%q\nwant:\n%q", got, want)
			}
			if status := openStatus(t, url, f.tokens["deployer"], "end"); status != http.StatusNoContent {
				t.Fatalf("resume after the end: %d, want 204", status)
			}
		})
	}
}

func openStatus(t *testing.T, url, token, lastID string) int {
	t.Helper()
	s, status := openLog(t, url, token, lastID)
	if s != nil {
		s.close()
	}
	return status
}

// TestLiveLogOfAFinishedDeployment: the whole log, each step's start and
// end, then the end, and the stream closes.
func TestLiveLogOfAFinishedDeployment(t *testing.T) {
	f := newAPIFixture(t, "0", "1")
	id, step := startLogDeployment(t, f.db)
	for _, c := range hostileChunks {
		f.db.AppendStepOutput(context.Background(), step, []byte(c))
	}
	finishLogDeployment(t, f, id, step)
	s, _ := openLog(t, fmt.Sprintf("%s/api/deployments/%d/log", f.url, id), "read-only-token-0123456789", "")
	defer s.close()
	p := newReplay()
	var kinds []string
	readAll(t, s, p, func(e sseEvent) bool { kinds = append(kinds, e.event); return false })
	if kinds[0] != "step" || kinds[len(kinds)-1] != "step" || !strings.Contains(p.ids[len(p.ids)-2], "1-end") {
		t.Fatalf("events %v ids %v", kinds, p.ids)
	}
	if got, want := p.outputs(), storedOutput(t, f.db, id); !maps(got, want) {
		t.Fatalf("replayed output:\n%q\nwant:\n%q", got, want)
	}
	if _, err := s.next(t); err != io.EOF {
		t.Fatalf("the stream goes on after the end: %v", err)
	}
}

// TestLiveLogRefusals: the read API's readers only; bad ids and
// positions are refused before any stream starts.
func TestLiveLogRefusals(t *testing.T) {
	f := newAPIFixture(t, "0", "1")
	id, _ := startLogDeployment(t, f.db)
	url := fmt.Sprintf("%s/api/deployments/%d/log", f.url, id)
	tests := []struct {
		name, url, token, last string
		status                 int
	}{
		{"no token", url, "", "", 401},
		{"a wrong token", url, "nope", "", 401},
		{"a token of another environment", url, f.tokens["staging"], "", 401},
		{"a revoked token", url, f.tokens["revoked"], "", 401},
		{"a bad position", url, f.tokens["reader"], "x-1", 400},
		{"a bad query position", url + "?from=1-x", f.tokens["reader"], "", 400},
		{"a bad id", f.url + "/api/deployments/x/log", f.tokens["reader"], "", 400},
		{"an unknown deployment", f.url + "/api/deployments/999/log", f.tokens["reader"], "", 404},
		{"the read token", url, f.tokens["reader"], "", 200},
		{"a token acting on the target", url, f.tokens["deployer"], "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := openStatus(t, tc.url, tc.token, tc.last); got != tc.status {
				t.Fatalf("%d, want %d", got, tc.status)
			}
		})
	}
}

// TestLiveLogTruncated: output cut from the head before a client saw it
// is one truncated event, then the stored tail, whose positions are the
// ones they had before the cut.
func TestLiveLogTruncated(t *testing.T) {
	f := newAPIFixture(t, "0", "1")
	id, step := startLogDeployment(t, f.db)
	ctx := context.Background()
	f.db.AppendStepOutput(ctx, step, []byte("first\n"))
	url := fmt.Sprintf("%s/api/deployments/%d/log", f.url, id)
	p := newReplay()
	s, _ := openLog(t, url, f.tokens["reader"], "")
	readAll(t, s, p, func(e sseEvent) bool { return e.event == "line" })
	s.close()
	line := strings.Repeat("x", 99) + "\n"
	for range 2 * store.StepOutputCap / len(line) {
		f.db.AppendStepOutput(ctx, step, []byte(line))
	}
	finishLogDeployment(t, f, id, step)
	s, _ = openLog(t, url, f.tokens["reader"], p.ids[len(p.ids)-1])
	defer s.close()
	e, err := s.next(t)
	if err != nil || e.event != "truncated" {
		t.Fatalf("first event %+v %v", e, err)
	}
	steps, err := f.db.Steps(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("1-%d", steps[0].OutputOffset+int64(strings.IndexByte(steps[0].Output, '\n'))+1)
	if e, _ = s.next(t); e.event != "line" || e.id != want {
		t.Fatalf("first line after the cut: %+v, want id %s", e, want)
	}
}

// TestLiveLogBounds: past the bound on open streams a client is told to
// retry (503), and shutting down ends every stream without its end event,
// so that clients resume from the next instance.
func TestLiveLogBounds(t *testing.T) {
	f := newAPIFixture(t, "0", "1")
	id, _ := startLogDeployment(t, f.db)
	url := fmt.Sprintf("%s/api/deployments/%d/log", f.url, id)
	f.srv.logs.mu.Lock()
	f.srv.logs.max = 1
	f.srv.logs.mu.Unlock()
	s, status := openLog(t, url, f.tokens["reader"], "")
	if status != 200 {
		t.Fatalf("first stream: %d", status)
	}
	defer s.close()
	if got := openStatus(t, url, f.tokens["reader"], ""); got != http.StatusServiceUnavailable {
		t.Fatalf("a stream past the bound: %d, want 503", got)
	}
	if e, err := s.next(t); err != nil || e.event != "step" {
		t.Fatalf("first event %+v %v", e, err)
	}
	f.srv.logs.stop()
	if e, err := s.next(t); err != io.EOF {
		t.Fatalf("after shutdown: %+v %v, want the stream closed", e, err)
	}
}

// TestLiveLogOutlastsTheServerTimeouts: a stream outlives the server's
// read and write timeouts (server.read_timeout, server.write_timeout),
// which bound requests, not a deployment that runs for minutes.
func TestLiveLogOutlastsTheServerTimeouts(t *testing.T) {
	f := newAPIFixture(t, "0", "1")
	hs := httptest.NewUnstartedServer(f.srv.Handler())
	hs.Config.ReadTimeout, hs.Config.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond
	hs.Start()
	defer hs.Close()
	id, step := startLogDeployment(t, f.db)
	s, status := openLog(t, fmt.Sprintf("%s/api/deployments/%d/log", hs.URL, id), f.tokens["reader"], "")
	if status != 200 {
		t.Fatalf("GET log: %d", status)
	}
	defer s.close()
	go func() {
		time.Sleep(600 * time.Millisecond)
		f.db.AppendStepOutput(context.Background(), step, []byte("late\n"))
		finishLogDeployment(t, f, id, step)
	}()
	p := newReplay()
	readAll(t, s, p, nil)
	if got := p.outputs()["1"]; got != "late\n" {
		t.Fatalf("output %q", got)
	}
}
