package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// remoteLogs is fraisier logs --remote: what the local command prints,
// read from the remote serve's API. -f follows the live log
// (GET /api/deployments/{id}/log), resuming after a dropped connection
// where it was.
func (a *app) remoteLogs(ctx context.Context, f remoteFlags, id int64, follow bool, w io.Writer) error {
	c, err := a.remote(f)
	if err != nil {
		return err
	}
	if !follow {
		return followLogs(ctx, remoteLogSource{c}, id, false, 0, w)
	}
	return c.followLog(ctx, id, w)
}

// remoteLogSource reads a deployment and its steps from the read API.
type remoteLogSource struct{ c *remoteClient }

func (s remoteLogSource) get(ctx context.Context, id int64) (remoteDeployment, error) {
	var got remoteDeployment
	err := s.c.do(ctx, http.MethodGet, "/api/deployments/"+strconv.FormatInt(id, 10), nil, &got)
	return got, err
}

func (s remoteLogSource) Deployment(ctx context.Context, id int64) (store.Deployment, error) {
	got, err := s.get(ctx, id)
	return got.Deployment, err
}

func (s remoteLogSource) Steps(ctx context.Context, id int64) ([]store.Step, error) {
	got, err := s.get(ctx, id)
	return got.Steps, err
}

// logMaxMisses is how many times in a row following a remote live log
// may fail to get anything before it gives up: about a minute.
const logMaxMisses = 60

// followLog prints the remote live log until the deployment ends,
// reconnecting from the last event seen when the connection drops.
func (c *remoteClient) followLog(ctx context.Context, id int64, w io.Writer) error {
	p := &logPrinter{w: w, id: id}
	misses := 0
	for {
		seen := p.last
		err := c.readLog(ctx, id, p)
		switch {
		case p.done:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("stopped following deployment %d: %w", id, ctx.Err())
		case err != nil && !transient(err):
			return err
		case p.last != seen:
			misses = 0
		default:
			misses++
		}
		if misses >= logMaxMisses {
			return fmt.Errorf("following deployment %d: %w (gave up after %d attempts)", id, err, misses)
		}
		wait := 100 * time.Millisecond
		if err != nil {
			wait = c.poll
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// readLog reads one connection's worth of the live log into p: nil when
// the server closed the stream, an error when the connection failed.
func (c *remoteClient) readLog(ctx context.Context, id int64, p *logPrinter) error {
	path := "/api/deployments/" + strconv.FormatInt(id, 10) + "/log"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+path, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	if p.last != "" {
		req.Header.Set("Last-Event-ID", p.last)
	}
	// The stream lasts as long as the deployment: no overall timeout.
	client := *c.http
	client.Timeout = 0
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("GET %s%s: %w", c.base.Redacted(), path, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNoContent:
		p.done = true
		return nil
	case resp.StatusCode != http.StatusOK:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return c.refusal(http.MethodGet, path, resp, b)
	}
	if err := readEvents(resp.Body, p.event); err != nil {
		return fmt.Errorf("GET %s%s: %w", c.base.Redacted(), path, err)
	}
	return nil
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	id, event string
	data      []string
}

// readEvents calls fn with each event of the stream r until it ends.
func readEvents(r io.Reader, fn func(sseEvent) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	var e sseEvent
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if e.event != "" || e.data != nil {
				if err := fn(e); err != nil {
					return err
				}
			}
			e = sseEvent{}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			e.id = value
		case "event":
			e.event = value
		case "data":
			e.data = append(e.data, value)
		}
	}
	return sc.Err()
}

// logPrinter prints live log events as followLogs prints the same
// deployment read from the state database.
type logPrinter struct {
	w    io.Writer
	id   int64
	last string
	done bool
	// lines says whether a line of the current step was printed: the
	// marker of output cut before it was read follows printed lines only.
	lines bool
}

// logStep is the data of a step event.
type logStep struct {
	Name           string     `json:"name"`
	Status         string     `json:"status"`
	Detail         string     `json:"detail"`
	OutputPrunedAt *time.Time `json:"output_pruned_at"`
}

func (p *logPrinter) event(e sseEvent) error {
	data := strings.Join(e.data, "\n")
	switch e.event {
	case "line":
		// A CR inside the line arrives as a break between data fields.
		io.WriteString(p.w, indent(strings.Join(e.data, "\r")+"\n"))
		p.lines = true
	case "truncated":
		if p.lines {
			io.WriteString(p.w, "    … (output truncated)\n")
		}
	case "step":
		var s logStep
		if err := json.Unmarshal([]byte(data), &s); err != nil {
			return fmt.Errorf("a step event that is not fraisier's JSON: %w", err)
		}
		p.step(s, strings.HasSuffix(e.id, "-end"))
	case "end":
		var d struct {
			Status store.Status `json:"status"`
		}
		if err := json.Unmarshal([]byte(data), &d); err != nil {
			return fmt.Errorf("an end event that is not fraisier's JSON: %w", err)
		}
		fmt.Fprintf(p.w, "deployment %d: %s\n", p.id, d.Status)
		p.done = true
	}
	if e.id != "" {
		p.last = e.id
	}
	return nil
}

func (p *logPrinter) step(s logStep, ended bool) {
	p.lines = false
	if !ended {
		fmt.Fprintf(p.w, "→ %s\n", s.Name)
		if s.OutputPrunedAt != nil {
			fmt.Fprintln(p.w, "    "+outputRemoved(*s.OutputPrunedAt))
		}
		return
	}
	line := "  " + s.Status
	if s.Detail != "" {
		line += ": " + flatLine(s.Detail)
	}
	fmt.Fprintln(p.w, line)
}
