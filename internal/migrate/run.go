package migrate

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/fraiseql/fraisier/internal/execx"
)

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_.:+-]*$`)

// checkToken vets a revision that becomes an argument of a tool: a plain
// token, never an option (leading -) and never shell syntax.
func checkToken(r Revision) error {
	if !tokenRE.MatchString(string(r)) || strings.HasPrefix(string(r), "-") {
		return fmt.Errorf("%w %s: a revision is letters, digits and _.:+- and does not start with -", ErrBadRevision, showRevision(r))
	}
	return nil
}

// runOpts says how to run one tool command.
type runOpts struct {
	// stream sends the output to Config.Output; queries keep quiet.
	stream bool
	// env comes after Config.Env: settings the Migrator derives from
	// dedicated Config fields win over the generic environment.
	env []string
	// noURL keeps the URL out of a program that gets the connection
	// another way (pg_dump's PG* variables).
	noURL bool
}

// maxCapture keeps whole listings (showmigrations of a large project) for
// parsing, not just the tail execx keeps by default.
const maxCapture = 4 << 20

// run runs argv in the release directory with the URL in the environment
// and returns its combined output (unscrubbed, for parsing only).
func (m *Migrator) run(ctx context.Context, argv []string, o runOpts) (string, error) {
	var sw *scrubWriter
	urlEnv := m.urlEnv
	if o.noURL {
		urlEnv = nil
	}
	c := execx.Cmd{
		Argv:       argv,
		Dir:        m.cfg.Dir,
		Env:        slices.Concat(urlEnv, m.cfg.Env, o.env),
		Credential: m.cfg.Credential,
		MaxOutput:  maxCapture,
	}
	if o.stream && m.cfg.Output != nil {
		sw = &scrubWriter{w: m.cfg.Output, s: m.sec}
		c.Output = sw
	}
	res, err := execx.Run(ctx, c)
	if sw != nil {
		sw.flush()
	}
	return string(res.Output), m.sec.scrubExit(err)
}

// say writes a progress line of our own to Config.Output.
func (m *Migrator) say(format string, args ...any) {
	if m.cfg.Output != nil {
		fmt.Fprintf(m.cfg.Output, format+"\n", args...)
	}
}

// lines splits tool output into trimmed, non-empty lines.
func lines(out string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimRight(l, " \t\r"); strings.TrimSpace(l) != "" {
			ls = append(ls, l)
		}
	}
	return ls
}

// stepFailed wraps err in a *StepError when the tool's output names the
// step that was running; step is "" when it did not.
func stepFailed(step string, err error) error {
	if err == nil || step == "" {
		return err
	}
	return &StepError{Step: step, Err: err}
}
