package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/systemd"
)

// Every service fraisier renders for a job carries these variables. The
// job may read them; fraisier reads targetVar back to find the units it
// installed for a target (ownedUnits), whatever they are named.
const (
	targetVar = "FRAISIER_TARGET"
	jobVar    = "FRAISIER_JOB"
)

// jobAccuracy is the timers' AccuracySec. systemd's default of a minute
// lets it start a job up to a minute late to batch wake-ups, which saves
// laptop batteries and surprises anyone who wrote "0 3 * * *".
const jobAccuracy = time.Second

// renderedJob is one job's units as this deployment installs them.
type renderedJob struct {
	job            *config.Job
	service, timer string // unit file names
	serviceText    []byte
	timerText      []byte
	// status is what the health step saw of the timer.
	status systemd.TimerStatus
}

// hash identifies the installed units in the job's recorded state.
func (j renderedJob) hash() string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(j.service), j.serviceText, []byte(j.timer), j.timerText} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// render renders the units of every job for the new release and checks
// what can be checked before the switch: calendar expressions (by
// systemd-analyze), and that every program exists and is executable.
func (s *scheduledRun) render(ctx context.Context, out io.Writer) (string, error) {
	return s.renderFor(ctx, out, s.d.releasePath)
}

func (s *scheduledRun) renderFor(ctx context.Context, out io.Writer, releaseDir string) (string, error) {
	env, t := s.d.env, s.d.t
	current := filepath.Join(s.d.appPath, currentLink)
	s.jobs = nil
	var problems []error
	for i := range env.Jobs {
		j := &env.Jobs[i]
		rj, err := renderJob(ctx, s.units, t, j, current, releaseDir, env)
		if err != nil {
			problems = append(problems, fmt.Errorf("job %s: %w", j.Name, err))
			continue
		}
		fmt.Fprintf(out, "%s: %s\n", rj.timer, strings.Join(rj.job.Command, " "))
		s.jobs = append(s.jobs, rj)
	}
	if err := errors.Join(problems...); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %s", len(s.jobs), plural(len(s.jobs), "job", "jobs")), nil
}

// renderJob renders one job's service and timer. The service runs in the
// current symlink, so that the unit files stay valid across releases and
// a switch back is all a rollback of the code needs, and as the
// environment's user: and group:.
func renderJob(ctx context.Context, u JobUnits, t store.Target, j *config.Job, current, releaseDir string, env *config.Environment) (renderedJob, error) {
	argv, err := jobArgv(j.Command, current, releaseDir)
	if err != nil {
		return renderedJob{}, err
	}
	cal, err := j.Calendar()
	if err != nil {
		return renderedJob{}, err
	}
	if _, next, err := u.ValidateCalendar(ctx, cal); err != nil {
		return renderedJob{}, err
	} else if next.IsZero() {
		return renderedJob{}, fmt.Errorf("schedule %q never elapses again", cal)
	}
	desc := j.Description
	if desc == "" {
		desc = fmt.Sprintf("fraisier: job %s of %s", j.Name, t)
	}
	ju := systemd.JobUnit{
		Name:             strings.TrimSuffix(j.SystemdService, ".service"),
		Description:      desc,
		WorkingDirectory: current,
		ExecStart:        argv,
		Environment:      map[string]string{targetVar: t.String(), jobVar: j.Name},
		OnCalendar:       cal,
		Persistent:       true,
		AccuracySec:      jobAccuracy,
		TimeoutSec:       j.Timeout.D(),
		User:             env.User,
		Group:            env.Group,
	}
	rj := renderedJob{job: j, service: j.SystemdService, timer: j.SystemdTimer}
	if rj.serviceText, err = systemd.RenderService(ju); err != nil {
		return rj, err
	}
	if rj.timerText, err = systemd.RenderTimer(ju); err != nil {
		return rj, err
	}
	return rj, nil
}

// jobArgv makes a job's command absolute, because systemd runs ExecStart
// with its own search path: a program with a "/" is relative to the
// release (and runs from current), a bare name is looked up in fraisier's
// PATH now, at deploy time. The program must exist and be executable in
// the new release, so that a job that cannot start fails the deployment
// rather than its first run.
func jobArgv(cmd []string, current, releaseDir string) ([]string, error) {
	if len(cmd) == 0 {
		return nil, errors.New("no command")
	}
	argv := slices.Clone(cmd)
	prog := cmd[0]
	switch {
	case filepath.IsAbs(prog):
		if err := checkExecutable(prog); err != nil {
			return nil, err
		}
	case strings.Contains(prog, "/"):
		rel := filepath.Clean(prog)
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, fmt.Errorf("program %s: leaves the release (write an absolute path)", prog)
		}
		if err := checkExecutable(filepath.Join(releaseDir, rel)); err != nil {
			return nil, fmt.Errorf("program %s in %s: %w", prog, filepath.Base(releaseDir), err)
		}
		argv[0] = filepath.Join(current, rel)
	default:
		p, err := exec.LookPath(prog)
		if err != nil {
			return nil, fmt.Errorf("program %s: %w", prog, err)
		}
		if argv[0], err = filepath.Abs(p); err != nil {
			return nil, fmt.Errorf("program %s: %w", prog, err)
		}
	}
	return argv, nil
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s: not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s: not executable", path)
	}
	return nil
}

// renderedHeader is the first line of every unit fraisier renders, taken
// from the renderer rather than copied, so the two cannot drift apart.
func renderedHeader() ([]byte, error) {
	b, err := systemd.RenderService(systemd.JobUnit{Name: "fraisier-header", ExecStart: []string{"/bin/true"}})
	if err != nil {
		return nil, fmt.Errorf("render a unit header: %w", err)
	}
	return b[:bytes.IndexByte(b, '\n')+1], nil
}
