package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// The live log's pacing: how often the state database is asked for new
// output, how long a silent stream waits before a keep-alive comment, how
// long one write may take, and how long one connection lasts before the
// client is asked to reconnect (it resumes where it was).
const (
	logPoll       = 50 * time.Millisecond
	logHeartbeat  = 15 * time.Second
	logWriteLimit = 30 * time.Second
	logStreamMax  = 10 * time.Minute
	// logWatchersMax bounds the live log streams open at once.
	logWatchersMax = 1000
)

// logPos is a position in a deployment's log: step seq and the byte
// offset, in all that step printed, of the next output to send; ended
// once the step's end was sent. The zero step, ended, is the beginning.
type logPos struct {
	seq   int
	off   int64
	ended bool
}

// endSeq is the seq of the position of the deployment's end event.
const endSeq = -1

// String is the position as an SSE event id: "SEQ-OFFSET", "SEQ-end", or
// "end" for the deployment's end.
func (p logPos) String() string {
	switch {
	case p.seq == endSeq:
		return "end"
	case p.ended:
		return strconv.Itoa(p.seq) + "-end"
	}
	return strconv.Itoa(p.seq) + "-" + strconv.FormatInt(p.off, 10)
}

// parseLogPos reads an event id; "" is the beginning.
func parseLogPos(s string) (logPos, error) {
	switch s {
	case "":
		return logPos{ended: true}, nil
	case "end":
		return logPos{seq: endSeq, ended: true}, nil
	}
	seq, off, ok := strings.Cut(s, "-")
	n, err := strconv.Atoi(seq)
	if !ok || err != nil || n < 0 {
		return logPos{}, errors.New("bad position")
	}
	if off == "end" {
		return logPos{seq: n, ended: true}, nil
	}
	o, err := strconv.ParseInt(off, 10, 64)
	if err != nil || o < 0 || n == 0 {
		return logPos{}, errors.New("bad position")
	}
	return logPos{seq: n, off: o}, nil
}

// logStepJSON is the data of a step event.
type logStepJSON struct {
	Seq            int        `json:"seq"`
	Name           string     `json:"name"`
	Status         string     `json:"status"`
	StartedAt      time.Time  `json:"started_at"`
	FinishedAt     *time.Time `json:"finished_at,omitempty"`
	DurationMS     *int64     `json:"duration_ms,omitempty"`
	ExitCode       *int       `json:"exit_code,omitempty"`
	Detail         string     `json:"detail,omitempty"`
	OutputPrunedAt *time.Time `json:"output_pruned_at,omitempty"`
}

func stepEvent(s store.Step, ended bool) logStepJSON {
	e := logStepJSON{Seq: s.Seq, Name: s.Name, Status: s.Status, StartedAt: s.StartedAt, OutputPrunedAt: s.OutputPrunedAt}
	if !ended {
		e.Status = store.StepRunning
		return e
	}
	e.FinishedAt, e.ExitCode, e.Detail = s.FinishedAt, s.ExitCode, s.Detail
	if s.FinishedAt != nil {
		ms := s.FinishedAt.Sub(s.StartedAt).Milliseconds()
		e.DurationMS = &ms
	}
	return e
}

// logEvents appends to b the events that take the log from pos to what
// the deployment and its steps say now, and returns the new position and
// whether the deployment's end was reached. Once the deployment ended, a
// step left running (the process died) ends with it.
func logEvents(b *bytes.Buffer, d store.Deployment, steps []store.Step, pos logPos) (logPos, bool) {
	final := d.FinishedAt != nil
	for _, s := range steps {
		if s.Seq < pos.seq || s.Seq == pos.seq && pos.ended {
			continue
		}
		if s.Seq > pos.seq {
			pos = logPos{seq: s.Seq}
			writeEvent(b, "step", pos, jsonData(stepEvent(s, false)))
		}
		pos = stepLines(b, s, pos, final || s.FinishedAt != nil)
		if !final && s.FinishedAt == nil {
			return pos, false
		}
		pos = logPos{seq: s.Seq, ended: true}
		writeEvent(b, "step", pos, jsonData(stepEvent(s, true)))
	}
	if !final {
		return pos, false
	}
	writeEvent(b, "end", logPos{seq: endSeq, ended: true}, jsonData(map[string]any{
		"deployment_id": d.ID, "status": d.Status, "error": d.Error}))
	return pos, true
}

// stepLines appends a line event for each line of the step's output past
// pos: only whole lines while the step runs, the last unterminated one
// too once it ended. Output cut from the head before it was sent is one
// truncated event.
func stepLines(b *bytes.Buffer, s store.Step, pos logPos, ended bool) logPos {
	out, base := s.Output, s.OutputOffset
	if s.OutputPrunedAt != nil {
		return pos // the step event said so
	}
	if pos.off < base {
		skipped := base - pos.off
		pos.off = base
		writeEvent(b, "truncated", pos, jsonData(map[string]int64{"seq": int64(s.Seq), "skipped_bytes": skipped}))
	}
	i := pos.off - base
	if i >= int64(len(out)) {
		return pos
	}
	rest := out[i:]
	for len(rest) > 0 {
		line, after, whole := strings.Cut(rest, "\n")
		if !whole && !ended {
			break
		}
		pos.off += int64(len(rest) - len(after))
		if !whole {
			pos.off = base + int64(len(out))
		}
		writeEvent(b, "line", pos, strings.Split(line, "\r"))
		rest = after
	}
	return pos
}

// writeEvent appends one event; data holds no CR or LF, each element
// one data field.
func writeEvent(b *bytes.Buffer, event string, pos logPos, data []string) {
	fmt.Fprintf(b, "id: %s\nevent: %s\n", pos, event)
	for _, d := range data {
		b.WriteString("data: ")
		b.WriteString(d)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
}

// jsonData is v as one data field: JSON escapes CR and LF.
func jsonData(v any) []string {
	j, _ := json.Marshal(v)
	return []string{string(j)}
}

// liveLog is GET /api/deployments/{id}/log: the deployment's log as
// Server-Sent Events (docs/json.md), from the position the client last
// saw (Last-Event-ID, or ?from=) until the deployment ends. Readers are
// those of GET /api/deployments/{id}. The clients following the same
// deployment share one poll of the state database.
func (s *Server) liveLog() http.HandlerFunc {
	s.logs = newLogFeeds(s.store, s.log, logPoll, logWatchersMax)
	return func(w http.ResponseWriter, r *http.Request) {
		if s.authorized(w, s.following(r)) {
			s.LiveLog(w, r)
		}
	}
}

// LiveLog streams the live log of the deployment named by the request's
// {id} path value to a caller already allowed to read it: the API route
// above, or the dashboard's cookie-authenticated route, since a browser's
// EventSource cannot send a bearer token.
func (s *Server) LiveLog(w http.ResponseWriter, r *http.Request) {
	id, pos, ok := s.checkLog(w, r)
	if !ok {
		return
	}
	feed, release, ok := s.logs.watch(id)
	if !ok {
		w.Header().Set("Retry-After", "5")
		s.reply(w, http.StatusServiceUnavailable, map[string]string{"error": "too many live logs are being followed; retry"})
		return
	}
	defer release()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.streamLog(w, r, feed, pos)
}

// checkLog checks a live log request: the deployment and the position
// to stream from, or ok false once it answered the request itself.
func (s *Server) checkLog(w http.ResponseWriter, r *http.Request) (int64, logPos, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.reply(w, http.StatusBadRequest, map[string]string{"error": "deployment id must be a positive integer"})
		return 0, logPos{}, false
	}
	from := r.Header.Get("Last-Event-ID")
	if from == "" {
		from = r.URL.Query().Get("from")
	}
	pos, err := parseLogPos(from)
	if err != nil {
		s.reply(w, http.StatusBadRequest, map[string]string{"error": "Last-Event-ID (or from) must be an id this stream sent, such as 2-1024"})
		return 0, logPos{}, false
	}
	_, err = s.store.Deployment(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.reply(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no deployment %d", id)})
		return 0, logPos{}, false
	case err != nil:
		s.internalError(w, "read deployment", err)
		return 0, logPos{}, false
	case pos.seq == endSeq:
		// The client saw the end: 204 tells an EventSource not to reconnect.
		w.WriteHeader(http.StatusNoContent)
		return 0, logPos{}, false
	}
	return id, pos, true
}

// streamLog sends the log from pos as the feed's polls show it, until the
// deployment ends, the client leaves or the stream's time is up.
func (s *Server) streamLog(w http.ResponseWriter, r *http.Request, feed *logFeed, pos logPos) {
	rc := http.NewResponseController(w)
	var b bytes.Buffer
	b.WriteString("retry: 1000\n\n")
	deadline := time.NewTimer(logStreamMax)
	defer deadline.Stop()
	ping := time.NewTicker(logHeartbeat)
	defer ping.Stop()
	snap := feed.latest()
	for {
		done := false
		switch {
		case snap.err != nil:
			return
		case snap.ready:
			pos, done = logEvents(&b, snap.d, snap.steps, pos)
		}
		if b.Len() > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(logWriteLimit))
			if _, err := w.Write(b.Bytes()); err != nil || rc.Flush() != nil {
				return
			}
			b.Reset()
			ping.Reset(logHeartbeat)
		}
		if done {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-deadline.C:
			return
		case <-s.logs.stopping:
			return
		case <-ping.C:
			b.WriteString(": ping\n\n")
		case <-snap.next:
			snap = feed.latest()
		}
	}
}
