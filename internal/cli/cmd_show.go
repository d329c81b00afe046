package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// showJSON is the stable --json shape of show.
type showJSON struct {
	Deployment deploymentJSON `json:"deployment"`
	Steps      []stepJSON     `json:"steps"`
}

type stepJSON struct {
	Seq             int        `json:"seq"`
	Name            string     `json:"name"`
	Status          string     `json:"status"`
	StartedAt       time.Time  `json:"started_at"`
	FinishedAt      *time.Time `json:"finished_at"`
	DurationMS      int64      `json:"duration_ms"`
	ExitCode        *int       `json:"exit_code"`
	Detail          string     `json:"detail"`
	Output          string     `json:"output"`
	OutputTruncated bool       `json:"output_truncated"`
	// OutputPrunedAt is when retention removed the output; null while
	// it is as recorded.
	OutputPrunedAt *time.Time `json:"output_pruned_at"`
}

func (a *app) showCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show <deployment-id>",
		Short: "Show one deployment: its steps and their output",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseDeploymentID(args[0])
			if err != nil {
				return err
			}
			db, err := a.openState(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			d, err := db.Deployment(cmd.Context(), id)
			if err != nil {
				return fmt.Errorf("deployment %d: %w", id, err)
			}
			steps, err := db.Steps(cmd.Context(), id)
			if err != nil {
				return withCode(ExitState, fmt.Errorf("steps of deployment %d: %w", id, err))
			}
			out := showJSON{Deployment: deploymentView(d), Steps: make([]stepJSON, 0, len(steps))}
			for _, s := range steps {
				sj := stepJSON{Seq: s.Seq, Name: s.Name, Status: s.Status, StartedAt: s.StartedAt.UTC(), FinishedAt: utcPtr(s.FinishedAt),
					ExitCode: s.ExitCode, Detail: s.Detail, Output: s.Output, OutputTruncated: s.Truncated, OutputPrunedAt: utcPtr(s.OutputPrunedAt)}
				if s.FinishedAt != nil {
					sj.DurationMS = s.FinishedAt.Sub(s.StartedAt).Milliseconds()
				}
				out.Steps = append(out.Steps, sj)
			}
			if asJSON {
				return writeJSON(a.streams.Out, out)
			}
			if a.streams.OutIsTerminal {
				out = out.terminalSafe()
			}
			return a.renderShow(a.streams.Out, out)
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// terminalSafe is s with every text a deployment or its steps recorded
// filtered for a terminal: step output, details and errors are the
// deployed code's words, and actors and refs come from webhook payloads.
func (s showJSON) terminalSafe() showJSON {
	d := &s.Deployment
	for _, f := range []*string{&d.Fraise, &d.Environment, (*string)(&d.Status), (*string)(&d.Trigger), &d.Actor, &d.RequestedRef,
		&d.OldSHA, &d.NewSHA, &d.Release, &d.Error, &d.Host} {
		*f = terminalSafe(*f)
	}
	steps := make([]stepJSON, len(s.Steps))
	for i, st := range s.Steps {
		st.Name, st.Status, st.Detail = terminalSafe(st.Name), terminalSafe(st.Status), terminalSafe(st.Detail)
		// Progress redrawn with carriage returns shows its last state.
		st.Output = terminalSafe(terminalText(st.Output))
		steps[i] = st
	}
	s.Steps = steps
	return s
}

func (a *app) renderShow(w io.Writer, s showJSON) error {
	d := s.Deployment
	fmt.Fprintf(w, "deployment %d: %s/%s %s\n", d.ID, d.Fraise, d.Environment, a.paintStatus(string(d.Status)))
	t := newTable(w, "", "")
	t.row("trigger", string(d.Trigger)+" by "+orDash(d.Actor))
	t.row("requested", orDash(d.RequestedRef))
	t.row("from", orDash(d.OldSHA))
	t.row("to", orDash(d.NewSHA))
	t.row("release", orDash(d.Release))
	t.row("started", fmtTime(d.StartedAt))
	t.row("finished", fmtTimePtr(d.FinishedAt))
	t.row("duration", fmtDurationMS(d.DurationMS))
	t.row("host", fmt.Sprintf("%s (pid %d)", orDash(d.Host), d.PID))
	if d.WebhookEventID != nil {
		t.row("webhook", fmt.Sprintf("event %d (fraisier webhooks)", *d.WebhookEventID))
	}
	if d.Error != "" {
		t.row("error", flatLine(d.Error))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(s.Steps) == 0 {
		_, err := fmt.Fprintln(w, "\nno steps recorded")
		return err
	}
	fmt.Fprintln(w, "\nsteps:")
	for _, st := range s.Steps {
		code := ""
		if st.ExitCode != nil {
			code = fmt.Sprintf(" exit %d", *st.ExitCode)
		}
		fmt.Fprintf(w, "→ %s %s%s %s", st.Name, a.paintStatus(st.Status), code, fmtDurationMS(st.DurationMS))
		if st.Detail != "" {
			fmt.Fprintf(w, " (%s)", flatLine(st.Detail))
		}
		fmt.Fprintln(w)
		if st.OutputPrunedAt != nil {
			fmt.Fprintln(w, "    "+outputRemoved(*st.OutputPrunedAt))
		}
		if st.Output != "" {
			if st.OutputTruncated {
				fmt.Fprintln(w, "    … (earlier output truncated)")
			}
			for _, line := range strings.Split(strings.TrimRight(terminalText(st.Output), "\n"), "\n") {
				fmt.Fprintln(w, "    "+line)
			}
		}
	}
	return nil
}

// parseDeploymentID reads a deployment id as history prints it (#12 or 12).
func parseDeploymentID(s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || id < 1 {
		return 0, &usageError{fmt.Errorf("deployment id %q: want a positive number (see fraisier history)", s)}
	}
	return id, nil
}

// outputRemoved says that retention removed a step's output, so that an
// empty log is not taken for a step that printed nothing.
func outputRemoved(at time.Time) string {
	return "(output removed by retention on " + fmtTime(at) + ": state.retention.step_output)"
}
