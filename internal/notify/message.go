package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// The events, as routes name them.
const (
	EventSucceeded      = "succeeded"
	EventFailed         = "failed"
	EventRolledBack     = "rolled_back"
	EventRollbackFailed = "rollback_failed"
	EventInterrupted    = "interrupted"
	EventSkipped        = "skipped"
	EventLockHeld       = "lock_held"
	EventRefused        = "webhook_refused"
	EventQueueStuck     = "queue_stuck"
)

// Commit is one end of a deployment.
type Commit struct {
	SHA     string `json:"sha"`
	Subject string `json:"subject,omitempty"`
}

// Step is the step a deployment failed at, with the last lines it printed.
type Step struct {
	Name   string `json:"name"`
	Output string `json:"output,omitempty"`
}

// Message is what a target is told, stored as the outbox payload and sent
// as the webhook's JSON body. It holds no secret: step output and errors
// are scrubbed before it is stored.
type Message struct {
	Version     int       `json:"version"`
	Event       string    `json:"event"`
	Fraise      string    `json:"fraise,omitempty"`
	Environment string    `json:"environment,omitempty"`
	Deployment  int64     `json:"deployment,omitempty"`
	Status      string    `json:"status,omitempty"`
	Trigger     string    `json:"trigger,omitempty"`
	From        *Commit   `json:"from,omitempty"`
	To          *Commit   `json:"to,omitempty"`
	Actor       string    `json:"actor,omitempty"`
	DurationMS  int64     `json:"duration_ms,omitempty"`
	Error       string    `json:"error,omitempty"`
	FailedStep  *Step     `json:"failed_step,omitempty"`
	Detail      string    `json:"detail,omitempty"`
	Show        string    `json:"show,omitempty"`
	At          time.Time `json:"at"`
}

// Caps on what a message quotes.
const (
	tailLines = 15
	tailBytes = 1500
	maxError  = 1000
)

// deploymentEvent is the event a deployment's terminal status is, or "".
func deploymentEvent(s store.Status) string {
	switch s {
	case store.StatusSucceeded:
		return EventSucceeded
	case store.StatusFailed:
		return EventFailed
	case store.StatusRolledBack:
		return EventRolledBack
	case store.StatusRollbackFailed:
		return EventRollbackFailed
	case store.StatusInterrupted:
		return EventInterrupted
	case store.StatusSkipped:
		return EventSkipped
	}
	return ""
}

// failedStep is the step a deployment failed at: the last failed one.
func failedStep(steps []store.Step, scrub func(string) string) *Step {
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].Status == store.StepFailed {
			out := steps[i].Output
			if out == "" {
				out = steps[i].Detail
			}
			return &Step{Name: steps[i].Name, Output: tail(scrub(out), tailLines, tailBytes)}
		}
	}
	return nil
}

// tail is the last n lines of s, at most max bytes of them, cut at a
// line (or rune) boundary.
func tail(s string, n, max int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s = strings.Join(lines, "\n")
	if len(s) > max {
		s = s[len(s)-max:]
		if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
			s = s[i+1:]
		}
		s = strings.ToValidUTF8(s, "")
	}
	return s
}

// clip caps s at n bytes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// short is a SHA's first 12 characters.
func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

var headlines = map[string]string{
	EventSucceeded:      "deployed",
	EventFailed:         "deployment FAILED (nothing changed, the previous release still serves)",
	EventRolledBack:     "deployment ROLLED BACK (the previous release serves again)",
	EventRollbackFailed: "deployment and its rollback FAILED: an operator is needed",
	EventInterrupted:    "deployment INTERRUPTED (fraisier stopped while it ran)",
	EventSkipped:        "deployment skipped",
	EventLockHeld:       "deploy lock held too long",
	EventRefused:        "webhook refused: bad signature",
	EventQueueStuck:     "deploy queue stuck",
}

// Title is the message's one-line summary.
func (m *Message) Title() string {
	where := "fraisier"
	if m.Fraise != "" {
		where = m.Fraise + "/" + m.Environment
	}
	if m.Deployment > 0 {
		return fmt.Sprintf("%s: %s (deployment %d)", where, headlines[m.Event], m.Deployment)
	}
	return where + ": " + headlines[m.Event]
}

// Text is the message as chat targets show it.
func (m *Message) Text() string {
	var b strings.Builder
	b.WriteString(m.Title())
	b.WriteByte('\n')
	if m.To != nil {
		b.WriteString(commitLine(m.From, m.To))
		b.WriteByte('\n')
	}
	var facts []string
	if m.Actor != "" {
		facts = append(facts, "by "+m.Actor)
	}
	if m.Trigger != "" {
		facts = append(facts, "trigger "+m.Trigger)
	}
	if m.DurationMS > 0 {
		d := time.Duration(m.DurationMS) * time.Millisecond
		if d >= time.Second {
			d = d.Round(100 * time.Millisecond)
		}
		facts = append(facts, "took "+d.String())
	}
	if len(facts) > 0 {
		b.WriteString(strings.Join(facts, ", "))
		b.WriteByte('\n')
	}
	if m.Error != "" {
		b.WriteString("Error: " + m.Error + "\n")
	}
	if m.Detail != "" {
		b.WriteString(m.Detail + "\n")
	}
	if m.FailedStep != nil {
		b.WriteString("Failed step: " + m.FailedStep.Name + "\n")
		if m.FailedStep.Output != "" {
			b.WriteString("Last lines:\n" + m.FailedStep.Output + "\n")
		}
	}
	if m.Show != "" {
		b.WriteString("More: " + m.Show + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

func commitLine(from, to *Commit) string {
	one := func(c *Commit) string {
		if c == nil || c.SHA == "" {
			return "(first deployment)"
		}
		if c.Subject == "" {
			return short(c.SHA)
		}
		return fmt.Sprintf("%s %q", short(c.SHA), clip(c.Subject, 100))
	}
	return one(from) + " → " + one(to)
}
