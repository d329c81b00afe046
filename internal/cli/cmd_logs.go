package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/store"
)

func (a *app) logsCommand() *cobra.Command {
	var (
		follow bool
		every  time.Duration
		remote remoteFlags
	)
	cmd := &cobra.Command{
		Use:   "logs <deployment-id>",
		Short: "Print a deployment's step output; -f follows a running deployment until it ends",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseDeploymentID(args[0])
			if err != nil {
				return err
			}
			w := a.streams.Out
			if a.streams.OutIsTerminal {
				// Step output and details are the deployed code's words.
				tw := newTerminalWriter(w)
				defer tw.Close()
				w = tw
			}
			if here, err := remote.local(); err != nil || !here {
				return remoteOr(err, func() error { return a.remoteLogs(cmd.Context(), remote, id, follow, w) })
			}
			db, err := a.openState(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			return followLogs(cmd.Context(), db, id, follow, every, w)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing output until the deployment ends")
	cmd.Flags().DurationVar(&every, "poll", 250*time.Millisecond, "how often -f looks for new output")
	addRemoteFlags(cmd, &remote)
	cmd.Flags().Lookup("remote").Usage = "read the deployment from the fraisier serve at this URL through its API (https://host, or http:// on a loopback address)"
	return cmd
}

// logSource is what logs needs of the state database.
type logSource interface {
	Deployment(ctx context.Context, id int64) (store.Deployment, error)
	Steps(ctx context.Context, deploymentID int64) ([]store.Step, error)
}

// followLogs prints each step's header once and its output as it grows.
// The state database keeps the tail of long output, so when a step's
// stored output no longer extends what was printed, printing resumes after
// a marker rather than repeating or skipping silently.
func followLogs(ctx context.Context, db logSource, id int64, follow bool, every time.Duration, w io.Writer) error {
	printed := map[int64]string{}
	headed := map[int64]bool{}
	finished := map[int64]bool{}
	for {
		d, err := db.Deployment(ctx, id)
		if err != nil {
			return fmt.Errorf("deployment %d: %w", id, err)
		}
		steps, err := db.Steps(ctx, id)
		if err != nil {
			return withCode(ExitState, fmt.Errorf("steps of deployment %d: %w", id, err))
		}
		for _, s := range steps {
			if !headed[s.ID] {
				fmt.Fprintf(w, "→ %s\n", s.Name)
				headed[s.ID] = true
				if s.OutputPrunedAt != nil {
					fmt.Fprintln(w, "    "+outputRemoved(*s.OutputPrunedAt))
				}
			}
			prev, out := printed[s.ID], s.Output
			if s.FinishedAt == nil {
				// A running step's last line may be half written: wait for it.
				out = out[:strings.LastIndexByte(out, '\n')+1]
			}
			switch {
			case strings.HasPrefix(out, prev):
				io.WriteString(w, indent(out[len(prev):]))
			default:
				io.WriteString(w, "    … (output truncated)\n"+indent(out))
			}
			printed[s.ID] = out
			if s.FinishedAt != nil && !finished[s.ID] {
				finished[s.ID] = true
				line := "  " + s.Status
				if s.Detail != "" {
					line += ": " + flatLine(s.Detail)
				}
				fmt.Fprintln(w, line)
			}
		}
		if d.FinishedAt != nil || !follow {
			fmt.Fprintf(w, "deployment %d: %s\n", id, d.Status)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// indent prefixes complete and partial lines of step output.
func indent(s string) string {
	s = terminalText(s)
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line != "" {
			b.WriteString("    " + line)
		}
	}
	out := b.String()
	if !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return out
}
