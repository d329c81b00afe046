package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/execx"
)

// Colours of a blue/green environment.
const (
	colourBlue  = "blue"
	colourGreen = "green"
)

// otherColour is the colour that takes over from c; blue when none serves.
func otherColour(c string) string {
	if c == colourBlue {
		return colourGreen
	}
	return colourBlue
}

// proxyState is what a proxy sent traffic to when it was read: the colour
// ("" when neither colour's address) and enough to put it back as it was.
type proxyState struct {
	colour string
	raw    []byte
	exists bool
}

// trafficProxy is the proxy in front of a blue/green environment.
type trafficProxy interface {
	// read says where the proxy sends traffic now.
	read(ctx context.Context) (proxyState, error)
	// point sends new requests to colour, and returns once the proxy
	// applies the change.
	point(ctx context.Context, colour string, out io.Writer) error
	// restore puts the proxy back as read found it.
	restore(ctx context.Context, s proxyState, out io.Writer) error
}

// proxyTimeout bounds one exchange with a proxy: a reload, an admin call.
const proxyTimeout = 15 * time.Second

// newProxy is the proxy bg names; units reload nginx when reload_unit is set.
func newProxy(bg *config.BlueGreen, units Units) (trafficProxy, error) {
	switch {
	case bg.Nginx != nil:
		return &nginxProxy{bg: bg, n: bg.Nginx, units: units}, nil
	case bg.Caddy != nil:
		return &caddyProxy{bg: bg, c: bg.Caddy, client: &http.Client{Timeout: proxyTimeout}}, nil
	case bg.Link != "":
		return &linkProxy{bg: bg, euid: os.Geteuid()}, nil
	}
	return nil, errors.New("blue_green names no proxy (nginx, caddy or link)")
}

// colourOf is the colour whose address is addr (in the proxy's own
// spelling, which dial turns a colour's address into), or "".
func colourOf(bg *config.BlueGreen, addr string, dial func(string) string) string {
	for _, c := range []string{colourBlue, colourGreen} {
		if addr != "" && addr == dial(bg.Address(c)) {
			return c
		}
	}
	return ""
}

// nginxProxy writes the upstream block into a file of its own, which the
// operator's nginx configuration includes, and reloads nginx.
type nginxProxy struct {
	bg    *config.BlueGreen
	n     *config.Nginx
	units Units
}

// nginxServer is a colour's address as an upstream server.
func nginxServer(addr string) string { return addr }

func (p *nginxProxy) render(colour string) []byte {
	return fmt.Appendf(nil, "# Written by fraisier: %s serves. Do not edit: every blue/green switch replaces this file.\nupstream %s {\n    server %s;\n}\n",
		colour, p.n.Upstream, nginxServer(p.bg.Address(colour)))
}

func (p *nginxProxy) read(context.Context) (proxyState, error) {
	raw, err := os.ReadFile(p.n.File)
	if errors.Is(err, os.ErrNotExist) {
		return proxyState{}, nil
	}
	if err != nil {
		return proxyState{}, fmt.Errorf("nginx: read %s: %w", p.n.File, err)
	}
	s := proxyState{raw: raw, exists: true}
	for _, line := range strings.Split(string(raw), "\n") {
		if addr, ok := strings.CutPrefix(strings.TrimSpace(line), "server "); ok {
			s.colour = colourOf(p.bg, strings.TrimSuffix(strings.TrimSpace(addr), ";"), nginxServer)
			break
		}
	}
	return s, nil
}

func (p *nginxProxy) point(ctx context.Context, colour string, out io.Writer) error {
	before, err := p.read(ctx)
	if err != nil {
		return err
	}
	return p.apply(ctx, p.render(colour), before, out)
}

func (p *nginxProxy) restore(ctx context.Context, s proxyState, out io.Writer) error {
	now, err := p.read(ctx)
	if err != nil {
		return err
	}
	if now.exists == s.exists && bytes.Equal(now.raw, s.raw) {
		// A switch that failed put the file back itself, and nginx
		// still runs what it ran.
		fmt.Fprintf(out, "nginx: %s is as it was\n", p.n.File)
		return nil
	}
	if !s.exists {
		if err := os.Remove(p.n.File); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("nginx: remove %s: %w", p.n.File, err)
		}
		return p.reload(ctx, out)
	}
	return p.apply(ctx, s.raw, now, out)
}

// apply writes content, has nginx check it (test), and reloads; a test
// that fails puts back what was there.
func (p *nginxProxy) apply(ctx context.Context, content []byte, before proxyState, out io.Writer) error {
	if err := writeFileAtomic(p.n.File, content); err != nil {
		return fmt.Errorf("nginx: write %s: %w", p.n.File, err)
	}
	if len(p.n.Test) > 0 {
		res, err := execx.Run(ctx, execx.Cmd{Argv: p.n.Test, Timeout: proxyTimeout, MaxOutput: 8 << 10})
		if err != nil {
			var undo error
			if before.exists {
				undo = writeFileAtomic(p.n.File, before.raw)
			} else {
				undo = os.Remove(p.n.File)
			}
			msg := fmt.Sprintf("nginx: %s refused the configuration: %v", execx.QuoteArgv(p.n.Test), err)
			if said := strings.TrimSpace(string(res.Output)); said != "" {
				msg += ": " + oneLine(said)
			}
			if undo != nil {
				return fmt.Errorf("%s; putting %s back failed too: %w", msg, p.n.File, undo)
			}
			return errors.New(msg + "; " + p.n.File + " put back, nginx not reloaded")
		}
	}
	return p.reload(ctx, out)
}

// reload has nginx read its configuration again and waits until a new
// worker runs: nginx starts new workers only once the configuration
// loaded, and keeps the old ones, silently, when it did not.
func (p *nginxProxy) reload(ctx context.Context, out io.Writer) error {
	master, perr := readPIDFile(p.n.PIDFile)
	var old map[int]bool
	if perr == nil {
		old = childrenOf(master)
	}
	switch {
	case p.n.ReloadUnit != "":
		r, ok := p.units.(unitReloader)
		if !ok {
			return fmt.Errorf("nginx: cannot reload %s: this systemd connection cannot reload units", p.n.ReloadUnit)
		}
		if err := r.Reload(ctx, p.n.ReloadUnit); err != nil {
			return fmt.Errorf("nginx: %w", err)
		}
	case perr != nil:
		return fmt.Errorf("nginx: %w (set blue_green.nginx.pid_file to nginx's pid file, or reload_unit)", perr)
	default:
		// The pid file names the process fraisier signals: it must be
		// nginx's master, not whatever a file left behind or planted names.
		if err := isNginxMaster(master); err != nil {
			return fmt.Errorf("nginx: %w (pid %d from %s); fix the pid_file or set reload_unit", err, master, p.n.PIDFile)
		}
		if err := syscall.Kill(master, syscall.SIGHUP); err != nil {
			return fmt.Errorf("nginx: signal its master (pid %d from %s) to reload: %w (fraisier must run as nginx's user or root, or set reload_unit)", master, p.n.PIDFile, err)
		}
	}
	if perr != nil {
		fmt.Fprintf(out, "nginx reloaded; not confirmed: %v\n", perr)
		return nil
	}
	deadline := time.Now().Add(proxyTimeout)
	for {
		if fresh, done := reloaded(master, old); done {
			fmt.Fprintf(out, "nginx reloaded: new worker %d, old workers shutting down\n", fresh)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nginx: no new worker %s after the reload, or old workers still accepting: nginx kept its old configuration (see its error log)", proxyTimeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nginx: wait for the reload: %w", context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// reloaded says whether nginx's reload has taken effect: a worker that
// was not there before runs (nginx starts new workers only once the new
// configuration loaded), and every old worker has exited or calls itself
// "shutting down", which it does as it closes its listening sockets.
func reloaded(master int, old map[int]bool) (fresh int, done bool) {
	for pid := range childrenOf(master) {
		if !old[pid] {
			fresh = pid
		}
	}
	if fresh == 0 {
		return 0, false
	}
	for pid := range old {
		title, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err == nil && !bytes.Contains(title, []byte("shutting down")) && bytes.Contains(title, []byte("worker")) {
			return fresh, false
		}
	}
	return fresh, true
}

// unitReloader reloads a unit (systemctl reload).
type unitReloader interface {
	Reload(ctx context.Context, unit string) error
}

func (u systemdUnits) Reload(ctx context.Context, unit string) error { return u.m.Reload(ctx, unit) }

// isNginxMaster checks that pid is an nginx master process, by the title
// nginx gives it ("nginx: master process ...").
func isNginxMaster(pid int) error {
	title, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return fmt.Errorf("no process %d: %w", pid, err)
	}
	if !bytes.HasPrefix(title, []byte("nginx: master process")) {
		return fmt.Errorf("process %d is not nginx's master (it runs %q)", pid, clipTitle(title))
	}
	return nil
}

// clipTitle is a process's command line, NULs as spaces, at most 80 bytes.
func clipTitle(b []byte) string {
	s := strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read nginx's pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("nginx's pid file %s holds no pid", path)
	}
	return pid, nil
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) map[int]bool {
	kids := map[int]bool{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		fields := strings.Fields(string(rest))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			kids[child] = true
		}
	}
	return kids
}

// writeFileAtomic replaces path with content: a temporary file beside it,
// synced, renamed over it, and the directory synced.
func writeFileAtomic(path string, content []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(content)
	if werr == nil {
		werr = f.Chmod(0o644)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return werr
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// caddyProxy sets the upstreams of one reverse_proxy handler through
// Caddy's admin API, which applies a change before it answers.
type caddyProxy struct {
	bg     *config.BlueGreen
	c      *config.Caddy
	client *http.Client
}

// caddyDial is a colour's address as Caddy dials it.
func caddyDial(addr string) string {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		return "unix/" + p
	}
	return addr
}

func (p *caddyProxy) url() string {
	path := p.c.Path
	if path == "" {
		path = "/id/" + p.c.ID + "/upstreams"
	}
	return strings.TrimSuffix(p.c.Admin, "/") + path
}

// do sends one admin API request and returns the answer's body.
func (p *caddyProxy) do(ctx context.Context, method string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.url(), rd)
	if err != nil {
		return nil, fmt.Errorf("caddy: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("caddy: admin API at %s: %w (is Caddy running with its admin API there?)", p.c.Admin, unwrapURL(err))
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusNotFound || strings.Contains(string(got), "unknown object ID") {
			hint = " (check blue_green.caddy.id or path: no reverse_proxy there)"
		}
		return nil, fmt.Errorf("caddy: %s %s: %s: %s%s", method, p.url(), resp.Status, oneLine(strings.TrimSpace(string(got))), hint)
	}
	return got, nil
}

func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

func (p *caddyProxy) read(ctx context.Context) (proxyState, error) {
	raw, err := p.do(ctx, http.MethodGet, nil)
	if err != nil {
		return proxyState{}, err
	}
	var ups []struct {
		Dial string `json:"dial"`
	}
	s := proxyState{raw: bytes.TrimSpace(raw), exists: true}
	if string(s.raw) == "null" {
		return proxyState{}, nil
	}
	if err := json.Unmarshal(raw, &ups); err != nil {
		return proxyState{}, fmt.Errorf("caddy: upstreams at %s: %w", p.url(), err)
	}
	if len(ups) == 1 {
		s.colour = colourOf(p.bg, ups[0].Dial, caddyDial)
	}
	return s, nil
}

func (p *caddyProxy) point(ctx context.Context, colour string, out io.Writer) error {
	body, err := json.Marshal([]map[string]string{{"dial": caddyDial(p.bg.Address(colour))}})
	if err != nil {
		return err
	}
	if _, err := p.do(ctx, http.MethodPatch, body); err != nil {
		return err
	}
	fmt.Fprintf(out, "caddy: upstreams of %s set to %s\n", p.url(), body)
	return nil
}

func (p *caddyProxy) restore(ctx context.Context, s proxyState, out io.Writer) error {
	if !s.exists {
		return nil // nothing was there; what fraisier set stays, unused by any colour it stops
	}
	if now, err := p.do(ctx, http.MethodGet, nil); err == nil && bytes.Equal(bytes.TrimSpace(now), s.raw) {
		fmt.Fprintf(out, "caddy: upstreams are as they were\n")
		return nil
	}
	if _, err := p.do(ctx, http.MethodPatch, s.raw); err != nil {
		return err
	}
	fmt.Fprintf(out, "caddy: upstreams put back\n")
	return nil
}
