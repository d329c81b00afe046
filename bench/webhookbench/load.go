package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http/httputil"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// bodies are the deliveries the generator sends: pushes of 256 shapes,
// each delivery pushing a commit of its own. A push is delivered once, and
// again only under its delivery id: the same push under a new id is a
// replay, which fraisier records and ignores. So the generator writes
// each delivery's commit into its shape's body and signs it as it sends
// it, which costs it about 10 µs a request, for both servers alike.
type bodies struct {
	head [][]byte // headers after Host, up to the signatures
	body [][]byte // the push, its after commit a placeholder
	// at are the offsets in body of the after commit's 40 hex digits, and
	// short those of its first 12 standing alone (in the compare URL).
	at, short      [][]int
	secret         []byte
	minLen, maxLen int
	tag            string // the run's delivery id prefix
	// commits is the run's prefix of the commits deliveries push: 24 hex
	// digits, then 16 of the delivery's sequence number.
	commits string
}

// placeholder is the after commit in the bodies' templates.
const placeholder = "feedfacecafebeefdeadbeef0123456789abcdef"

// makeBodies builds n realistic GitHub pushes of about 5 KB to
// acme/bench's main, the deliveries' shapes, to be signed with secret.
func makeBodies(n int, secret []byte) (*bodies, error) {
	var r [20]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, fmt.Errorf("delivery id prefix: %w", err)
	}
	x := hex.EncodeToString(r[:])
	b := &bodies{tag: x[:8] + "-" + x[8:12] + "-4" + x[12:15] + "-8" + x[15:16] + "00-", minLen: 1 << 30,
		secret: secret, commits: x[16:40]}
	for i := 0; i < n; i++ {
		before := fmt.Sprintf("%040x", uint64(i+1)*0x9e3779b97f4a7c15)
		body := pushPayload(i, before, placeholder)
		var at, short []int
		for j := 0; ; {
			k := bytes.Index(body[j:], []byte(placeholder[:12]))
			if k < 0 {
				break
			}
			j += k
			if bytes.HasPrefix(body[j:], []byte(placeholder)) {
				at = append(at, j)
			} else {
				short = append(short, j)
			}
			j += 12
		}
		head := "User-Agent: GitHub-Hookshot/5a1b2c3\r\n" +
			"Accept: */*\r\n" +
			"Content-Type: application/json\r\n" +
			"X-GitHub-Event: push\r\n" +
			"X-GitHub-Hook-ID: 470512345\r\n" +
			"X-GitHub-Hook-Installation-Target-ID: 186853002\r\n" +
			"X-GitHub-Hook-Installation-Target-Type: repository\r\n"
		b.head, b.body = append(b.head, []byte(head)), append(b.body, body)
		b.at, b.short = append(b.at, at), append(b.short, short)
		b.minLen, b.maxLen = min(b.minLen, len(body)), max(b.maxLen, len(body))
	}
	return b, nil
}

// commit is the commit delivery n pushes.
func (b *bodies) commit(n uint64) string {
	var d [16]byte
	hex16(&d, n)
	return b.commits + string(d[:])
}

// signer builds and signs deliveries; each connection has its own.
type signer struct {
	sha1, sha256 hash.Hash
	head, body   []byte
}

func (b *bodies) signer() *signer {
	return &signer{sha1: hmac.New(sha1.New, b.secret), sha256: hmac.New(sha256.New, b.secret),
		head: make([]byte, 0, 1024), body: make([]byte, 0, b.maxLen)}
}

// request is delivery n pushing after: its header lines after Host, and
// its body, both valid until the signer's next request.
func (b *bodies) request(s *signer, n uint64, after string) (head, body []byte) {
	i := int(n % uint64(len(b.body)))
	s.body = append(s.body[:0], b.body[i]...)
	for _, j := range b.at[i] {
		copy(s.body[j:], after)
	}
	for _, j := range b.short[i] {
		copy(s.body[j:], after[:12])
	}
	var sum [sha256.Size]byte
	s.sha1.Reset()
	s.sha1.Write(s.body)
	s.sha256.Reset()
	s.sha256.Write(s.body)
	var id [12]byte
	hex12(&id, n)
	h := append(s.head[:0], b.head[i]...)
	h = append(h, "X-Hub-Signature: sha1="...)
	h = hex.AppendEncode(h, s.sha1.Sum(sum[:0]))
	h = append(h, "\r\nX-Hub-Signature-256: sha256="...)
	h = hex.AppendEncode(h, s.sha256.Sum(sum[:0]))
	h = append(h, "\r\nContent-Length: "...)
	h = strconv.AppendInt(h, int64(len(s.body)), 10)
	h = append(h, "\r\nX-GitHub-Delivery: "...)
	h = append(h, b.tag...)
	h = append(h, id[:]...)
	s.head = append(h, "\r\n"...)
	return s.head, s.body
}

// pushPayload is a GitHub push event as GitHub sends it (fields in its
// order, compact JSON), with enough commits to weigh about 5 KB.
func pushPayload(i int, before, after string) []byte {
	var commits strings.Builder
	const target = 5 * 1024
	commit := func(k int, id string) string {
		return fmt.Sprintf(`{"id":"%s","tree_id":"%040x","distinct":true,"message":"Change %d of push %d: tune the intake path","timestamp":"2026-11-20T10:%02d:%02dZ","url":"https://github.com/acme/bench/commit/%s","author":{"name":"Ada Lovelace","email":"ada@acme.example","username":"ada"},"committer":{"name":"GitHub","email":"noreply@github.com","username":"web-flow"},"added":[],"removed":[],"modified":["src/m%02d.py","VERSION"]}`,
			id, k*7919+i, k, i, k%60, i%60, id, k%16)
	}
	head := commit(0, after)
	frame := func(cs string) string {
		return fmt.Sprintf(`{"ref":"refs/heads/main","before":"%s","after":"%s","repository":{"id":186853002,"node_id":"MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=","name":"bench","full_name":"acme/bench","private":true,"owner":{"name":"acme","email":null,"login":"acme","id":21031067,"node_id":"MDEyOk9yZ2FuaXphdGlvbjIxMDMxMDY3","type":"Organization","site_admin":false},"html_url":"https://github.com/acme/bench","description":"The service the benchmark deploys","fork":false,"url":"https://github.com/acme/bench","created_at":1557933565,"updated_at":"2026-11-20T10:00:41Z","pushed_at":%d,"git_url":"git://github.com/acme/bench.git","ssh_url":"git@github.com:acme/bench.git","clone_url":"https://github.com/acme/bench.git","svn_url":"https://github.com/acme/bench","homepage":null,"size":120,"stargazers_count":0,"watchers_count":0,"language":"Python","has_issues":true,"forks_count":0,"archived":false,"disabled":false,"open_issues_count":0,"visibility":"private","forks":0,"open_issues":0,"watchers":0,"default_branch":"main","master_branch":"main","organization":"acme"},"pusher":{"name":"ada","email":"ada@acme.example"},"organization":{"login":"acme","id":21031067,"node_id":"MDEyOk9yZ2FuaXphdGlvbjIxMDMxMDY3","url":"https://api.github.com/orgs/acme","description":""},"sender":{"login":"ada","id":5031067,"node_id":"MDQ6VXNlcjUwMzEwNjc=","type":"User","site_admin":false},"created":false,"deleted":false,"forced":false,"base_ref":null,"compare":"https://github.com/acme/bench/compare/%s...%s","commits":[%s],"head_commit":%s}`,
			before, after, 1763632841+i, before[:12], after[:12], cs, head)
	}
	for k := 1; ; k++ {
		id := fmt.Sprintf("%040x", uint64(k)*0x9e3779b97f4a7c15+uint64(i))
		if k == 1 {
			id = after
		}
		next := commit(k, id)
		if commits.Len() > 0 {
			next = "," + next
		}
		if len(frame(commits.String()+next)) > target+256 {
			break
		}
		commits.WriteString(next)
		if len(frame(commits.String())) >= target {
			break
		}
	}
	return []byte(frame(commits.String()))
}

// Load phases.
const (
	phaseWarm int32 = iota
	phaseMeasure
	phaseStop
)

// loadResult is what the generator saw of one server.
type loadResult struct {
	lat      []time.Duration // measured window, sorted
	window   time.Duration
	total202 int64         // every phase, first deliveries only: what the server must have recorded
	other    map[int]int64 // statuses other than 202, every phase
	errs     int64         // connection or protocol errors
	firstErr error
	// redelivered counts the deliveries sent again under their id, every
	// phase, and unlike those answered otherwise than the first time
	// (status or webhook event id), with the first such difference.
	redelivered, unlike int64
	firstUnlike         string
	// serverCPU and genCPU are the CPU time the server and this program
	// used during the measured window.
	serverCPU, genCPU time.Duration
}

func (l loadResult) rate() float64 { return float64(len(l.lat)) / l.window.Seconds() }

// pct is the p-th percentile latency (100: the maximum).
func (l loadResult) pct(p float64) time.Duration {
	if len(l.lat) == 0 {
		return 0
	}
	i := int(float64(len(l.lat))*p/100+0.5) - 1
	return l.lat[max(0, min(i, len(l.lat)-1))]
}

func (l loadResult) otherStatuses() string {
	var parts []string
	for s, n := range l.other {
		parts = append(parts, fmt.Sprintf("%d×%d", n, s))
	}
	sort.Strings(parts)
	if l.errs > 0 {
		parts = append(parts, fmt.Sprintf("%d errors (%v)", l.errs, l.firstErr))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

type workerResult struct {
	lat                 []time.Duration
	n202                int64
	other               map[int]int64
	errs                int64
	firstErr            error
	redelivered, unlike int64
	firstUnlike         string
}

// drive sends the bodies to addr over conns keep-alive connections: warm
// unmeasured, then measure. Each connection sends its next request as soon
// as the answer to the previous one is read (a closed loop), so the rate
// is what the server sustains at that concurrency. A fraction redeliver
// of the requests send again a delivery the connection sent before, under
// its id and with its body, as a forge's Redeliver button does.
func drive(addr string, serverPID int, b *bodies, conns int, warm, measure time.Duration, redeliver float64) loadResult {
	var (
		seq   atomic.Uint64
		phase atomic.Int32
		wg    sync.WaitGroup
	)
	res := make([]workerResult, conns)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[c] = worker(addr, b, &seq, &phase, redeliver, uint64(c))
		}()
	}
	time.Sleep(warm)
	s0, g0 := procCPU(serverPID), procCPU(os.Getpid())
	phase.Store(phaseMeasure)
	start := time.Now()
	time.Sleep(measure)
	phase.Store(phaseStop)
	window := time.Since(start)
	s1, g1 := procCPU(serverPID), procCPU(os.Getpid())
	wg.Wait()

	out := loadResult{window: window, other: map[int]int64{}, serverCPU: s1 - s0, genCPU: g1 - g0}
	for _, r := range res {
		out.lat = append(out.lat, r.lat...)
		out.total202 += r.n202
		out.errs += r.errs
		if out.firstErr == nil {
			out.firstErr = r.firstErr
		}
		out.redelivered += r.redelivered
		out.unlike += r.unlike
		if out.firstUnlike == "" {
			out.firstUnlike = r.firstUnlike
		}
		for s, n := range r.other {
			out.other[s] += n
		}
	}
	sort.Slice(out.lat, func(i, j int) bool { return out.lat[i] < out.lat[j] })
	return out
}

// sent is a delivery a connection sent, and what it was answered.
type sent struct {
	n      uint64
	status int
	event  int64 // the webhook event id of the answer, 0 if none
}

// history are a connection's recent deliveries, those it redelivers.
type history struct {
	ring   [1024]sent
	filled int
	next   int
}

func (h *history) add(s sent) {
	h.ring[h.next] = s
	h.next = (h.next + 1) % len(h.ring)
	h.filled = min(h.filled+1, len(h.ring))
}

func worker(addr string, b *bodies, seq *atomic.Uint64, phase *atomic.Int32, redeliver float64, id uint64) workerResult {
	r := workerResult{lat: make([]time.Duration, 0, 1<<14), other: map[int]int64{}}
	c := &client{addr: addr, sign: b.signer()}
	defer c.close()
	rng := mrand.New(mrand.NewPCG(id, 0x5eed))
	var (
		past history
		body []byte
	)
	for phase.Load() != phaseStop {
		// A redelivery sends again one of the connection's earlier
		// deliveries, whose answer it knows.
		again := redeliver > 0 && past.filled > 0 && rng.Float64() < redeliver
		var first sent
		n := uint64(0)
		if again {
			first = past.ring[rng.IntN(past.filled)]
			n = first.n
		} else {
			n = seq.Add(1)
		}
		status, d, err := c.do(b, n, &body)
		if err != nil {
			r.fail(err)
			continue
		}
		switch {
		case again:
			r.redelivered++
			if ev := eventID(body); status != first.status || ev != first.event {
				r.unlike++
				if r.firstUnlike == "" {
					r.firstUnlike = fmt.Sprintf("delivery %d: first %d (event %d), again %d (event %d)", n, first.status, first.event, status, ev)
				}
			}
		case status == 202:
			r.n202++
		}
		if status != 202 {
			r.other[status]++
		}
		if redeliver > 0 && !again {
			past.add(sent{n: n, status: status, event: eventID(body)})
		}
		if phase.Load() == phaseMeasure {
			r.lat = append(r.lat, d)
		}
	}
	return r
}

func (r *workerResult) fail(err error) {
	r.errs++
	if r.firstErr == nil {
		r.firstErr = err
	}
}

// requestTimeout bounds a request from its first byte sent to its
// answer read.
const requestTimeout = 60 * time.Second

// client is one keep-alive connection of the generator.
type client struct {
	addr string
	sign *signer
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// do sends delivery n and reads its answer, the body into *body. It
// returns the status and the time from the request's last byte written to
// the answer read.
func (c *client) do(b *bodies, n uint64, body *[]byte) (int, time.Duration, error) {
	if c.conn == nil {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			return 0, 0, fmt.Errorf("dial %s: %w", c.addr, err)
		}
		c.conn, c.br, c.bw = conn, bufio.NewReaderSize(conn, 4096), bufio.NewWriterSize(conn, 8192)
	}
	// A server that stops answering fails the request rather than
	// holding the run forever.
	if err := c.conn.SetDeadline(time.Now().Add(requestTimeout)); err != nil {
		c.close()
		return 0, 0, fmt.Errorf("set a deadline: %w", err)
	}
	head, payload := b.request(c.sign, n, b.commit(n))
	c.bw.WriteString("POST /webhook HTTP/1.1\r\nHost: " + c.addr + "\r\n")
	c.bw.Write(head)
	c.bw.WriteString("\r\n")
	c.bw.Write(payload)
	t0 := time.Now()
	err := c.bw.Flush()
	var (
		status int
		closed bool
	)
	if err == nil {
		status, closed, err = readResponse(c.br, body)
	}
	d := time.Since(t0)
	if err != nil || closed {
		c.close()
	}
	return status, d, err
}

// eventID is the webhook_event_id of a fraisier answer, 0 if none.
func eventID(body []byte) int64 {
	const key = `"webhook_event_id":`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return 0
	}
	var n int64
	for _, c := range body[i+len(key):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

func hex16(dst *[16]byte, n uint64) {
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		dst[i] = digits[n&0xf]
		n >>= 4
	}
}

func hex12(dst *[12]byte, n uint64) {
	const digits = "0123456789abcdef"
	for i := 11; i >= 0; i-- {
		dst[i] = digits[n&0xf]
		n >>= 4
	}
}

// readResponse reads one HTTP/1.1 response, its body into *body. It
// returns the status and whether the server closes the connection.
func readResponse(br *bufio.Reader, body *[]byte) (status int, close bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, fmt.Errorf("read status line: %w", err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	length, chunked := -1, false
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, fmt.Errorf("read headers: %w", err)
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil {
				return 0, false, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			close = bytes.EqualFold(v, []byte("close"))
		}
	}
	*body = (*body)[:0]
	switch {
	case chunked:
		w := bytes.NewBuffer(*body)
		if _, err = io.Copy(w, httputil.NewChunkedReader(br)); err == nil {
			*body = w.Bytes()
			// The trailer: lines up to an empty one.
			for {
				t, terr := br.ReadSlice('\n')
				if terr != nil || len(bytes.TrimRight(t, "\r\n")) == 0 {
					err = terr
					break
				}
			}
		}
	case length >= 0:
		*body = slices.Grow(*body, length)[:length]
		_, err = io.ReadFull(br, *body)
	default:
		return 0, false, fmt.Errorf("response of status %d without a length", status)
	}
	if err != nil {
		return 0, false, fmt.Errorf("read body: %w", err)
	}
	return status, close, nil
}

// procCPU is the user and system CPU time a process has used so far, from
// /proc/<pid>/stat (in clock ticks of 10 ms), or 0 if it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields count from its closing ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// cores is the CPU the server and the generator used during the window,
// in cores (of the machine's 2, say).
func (l loadResult) cores() string {
	s := l.window.Seconds()
	return fmt.Sprintf("%.2f / %.2f cores", l.serverCPU.Seconds()/s, l.genCPU.Seconds()/s)
}
