package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/health"
	"github.com/fraiseql/fraisier/internal/store"
)

// bgRun is what one blue/green deployment (or rollback) found and changed:
// where the proxy sent traffic, the colour taking over, and how far it got,
// so that a failure puts back exactly what moved.
type bgRun struct {
	cfg   *config.BlueGreen
	proxy trafficProxy
	// before is the proxy as found; a failure puts it back.
	before proxyState
	// next is the colour taking over; check the colour the health check
	// probes (next once started, before.colour again once undone).
	next, check string
	// linkBefore is the release current-<next> named before ("" none).
	linkBefore string
	// started: next was started or restarted by this deployment.
	started bool
	// switched: the proxy may point at next; undone: put back since.
	switched, undone bool
	// drain is the colour to stop once its requests have drained.
	drain string
}

// colourLink is the link the colour's unit runs its release from.
func colourLink(colour string) string { return currentLink + "-" + colour }

// blueGreen is the deployment's blue/green state, reading the proxy the
// first time it is asked.
func (d *deployment) blueGreen(ctx context.Context) (*bgRun, error) {
	if d.bg != nil {
		return d.bg, nil
	}
	p, err := newProxy(d.env.BlueGreen, d.c.Units(d.env.Scope))
	if err != nil {
		return nil, err
	}
	s, err := p.read(ctx)
	if err != nil {
		return nil, err
	}
	d.bg = &bgRun{cfg: d.env.BlueGreen, proxy: p, before: s, next: otherColour(s.colour), check: s.colour}
	return d.bg, nil
}

// blueGreenSteps turns a flow's steps into blue/green ones: restart starts
// the colour that does not serve, health probes it at its own address,
// and only then does the proxy switch to it.
func (d *deployment) blueGreenSteps(steps []plannedStep) []plannedStep {
	if !d.env.IsBlueGreen() {
		return steps
	}
	out := make([]plannedStep, 0, len(steps)+1)
	for _, s := range steps {
		switch s.name {
		case "restart":
			s.fn, s.skip = d.startColour, ""
		case "health":
			out = append(out, s, plannedStep{"switch proxy", 2 * proxyTimeout, d.switchProxy, ""})
			continue
		}
		out = append(out, s)
	}
	return out
}

// planBlueGreen is the --plan's view of blueGreenSteps.
func planBlueGreen(steps []string) []string {
	out := make([]string, 0, len(steps)+2)
	for _, s := range steps {
		switch s {
		case "restart":
			out = append(out, "start the colour not serving")
		case "health":
			out = append(out, "health of that colour", "switch proxy", "drain and stop the other colour")
		default:
			out = append(out, s)
		}
	}
	return out
}

// startColour points the colour that does not serve at the release and
// (re)starts its unit; a colour already running that release is left
// running (a rollback while the previous colour is still warm).
func (d *deployment) startColour(ctx context.Context, out io.Writer) (string, error) {
	bg, err := d.blueGreen(ctx)
	if err != nil {
		return "", err
	}
	u := d.c.Units(d.env.Scope)
	unit := bg.cfg.Instance(bg.next)
	facts, _, err := reloadIfChanged(ctx, u, []string{unit}, out, d.checkUnitFiles)
	if err != nil {
		return "", err
	}
	if facts[0].load == "not-found" {
		return "", fmt.Errorf("unit %s not found: no unit file defines the template %s (check blue_green.unit and scope: %s)", unit, bg.cfg.Unit, d.env.Scope)
	}
	bg.linkBefore = readColourLink(d.appPath, bg.next)
	if bg.linkBefore == d.release {
		if active, err := u.IsActive(ctx, unit); err == nil && active {
			bg.check = bg.next
			return fmt.Sprintf("%s already runs %s: not restarted", unit, d.release), nil
		}
	}
	bg.started = true
	if err := pointColourLink(d.appPath, bg.next, d.release); err != nil {
		return "", err
	}
	bg.check = bg.next
	if err := startUnits(ctx, u, []string{unit}, d.settle(), out); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s started on %s (%s serves)", unit, d.release, orNone(bg.before.colour)), nil
}

// switchProxy sends new requests to the colour that passed its health
// check; the colour that served keeps its requests in flight and drains.
func (d *deployment) switchProxy(ctx context.Context, out io.Writer) (string, error) {
	bg := d.bg
	bg.switched = true
	if err := bg.proxy.point(ctx, bg.next, out); err != nil {
		return "", err
	}
	if old := bg.before.colour; old != "" && old != bg.next {
		bg.drain = old
		return fmt.Sprintf("%s → %s; %s drains for %s, then stops", old, bg.next, old, bg.cfg.Drain.D()), nil
	}
	return orNone(bg.before.colour) + " → " + bg.next, nil
}

// undoBlueGreen puts the proxy back where it was and takes the new colour
// down: at once when it never received traffic, after the drain when it
// did. A compensation runs it once the database is back and before
// current moves, so that the colour that served serves again first. A warm
// colour this deployment did not start is left as it was.
func (d *deployment) undoBlueGreen(ctx context.Context) error {
	bg := d.bg
	if bg == nil || (!bg.started && !bg.switched) {
		return nil
	}
	unit := bg.cfg.Instance(bg.next)
	return d.rec.step(ctx, "rollback colour", 0, func(ctx context.Context, out io.Writer) (string, error) {
		var done []string
		if bg.switched {
			if err := bg.proxy.restore(ctx, bg.before, out); err != nil {
				return "", err
			}
			bg.undone, bg.drain = true, bg.next
			done = append(done, "proxy back to "+orNone(bg.before.colour), unit+" drains, then stops")
		} else {
			if err := d.c.Units(d.env.Scope).Stop(ctx, unit); err != nil {
				return "", err
			}
			done = append(done, "proxy untouched", unit+" stopped")
		}
		bg.check = bg.before.colour
		if bg.started {
			if err := restoreColourLink(d.appPath, bg.next, bg.linkBefore); err != nil {
				return strings.Join(done, "; "), err
			}
		}
		return strings.Join(done, "; "), nil
	})
}

// colourCheck aims the configured health check at the colour under
// check: its own address for url and tcp, {colour} in a command's
// arguments, its unit for unit. With no colour serving, the check is
// the one configured.
func (d *deployment) colourCheck(ctx context.Context, c health.Check) (health.Check, error) {
	if !d.env.IsBlueGreen() {
		return c, nil
	}
	bg, err := d.blueGreen(ctx)
	if err != nil || bg.check == "" {
		return c, err
	}
	addr := bg.cfg.Address(bg.check)
	c.Units = []string{bg.cfg.Instance(bg.check)}
	switch c.Kind {
	case health.KindURL:
		u, err := url.Parse(c.URL)
		if err != nil {
			return c, fmt.Errorf("health_check.url: %w", err)
		}
		u.Host = addr
		c.URL = u.String()
	case health.KindTCP:
		c.TCPAddr = addr
	case health.KindCommand:
		argv := make([]string, len(c.Command))
		for i, a := range c.Command {
			argv[i] = strings.ReplaceAll(a, "{colour}", bg.check)
		}
		c.Command = argv
	}
	return c, nil
}

// restartRecorder is the store's record of how a deployment restarted.
type restartRecorder interface {
	SetDeploymentRestart(ctx context.Context, id int64, mode, colour string) error
}

// drainJob is a colour to stop once its grace has passed, after the
// deployment that left it draining ended.
type drainJob struct {
	env    *config.Environment
	target store.Target
	colour string
}

// finishRestart records the deployment's restart mode and the colour that
// serves after it, and returns the colour left to drain, if any.
func (d *deployment) finishRestart(ctx context.Context) *drainJob {
	mode := d.env.Restart
	if mode == "" {
		mode = config.RestartPlain
	}
	colour := ""
	var job *drainJob
	if d.bg == nil && d.env.IsBlueGreen() {
		// Ended before the restart: the proxy is where it was; ask it, so
		// that the record still says which colour serves.
		rctx, cancel := context.WithTimeout(ctx, proxyTimeout)
		_, _ = d.blueGreen(rctx)
		cancel()
	}
	if bg := d.bg; bg != nil {
		colour = bg.before.colour
		if bg.switched && !bg.undone {
			colour = bg.next
		}
		if bg.drain != "" {
			job = &drainJob{env: d.env, target: d.t, colour: bg.drain}
		}
	}
	if r, ok := d.e.Store.(restartRecorder); ok {
		if err := r.SetDeploymentRestart(ctx, d.id, mode, colour); err != nil {
			fmt.Fprintf(d.e.progress(), "  warning: record the restart mode: %v\n", err)
		}
	}
	return job
}

// drainOld stops the colour a deployment left draining once its grace has
// passed, holding the target's lock, and only if the proxy does not send
// traffic to it again by then (a rollback switched back to it, warm).
func (e *Engine) drainOld(ctx context.Context, c Collaborators, res Result) {
	j := res.drain
	if j == nil {
		return
	}
	bg := j.env.BlueGreen
	unit := bg.Instance(j.colour)
	fmt.Fprintf(e.progress(), "  %s drains for %s, then stops\n", unit, bg.Drain.D())
	select {
	case <-ctx.Done():
		// Stopping it now could cut requests in flight; the next
		// deployment restarts it as its new colour.
		fmt.Fprintf(e.progress(), "  %s left running: stopped before its drain ended\n", unit)
		return
	case <-time.After(bg.Drain.D()):
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	release, _, _, err := e.lock(ctx, j.target, "stop "+unit+" after its drain", time.Minute, func(error) {})
	if err != nil {
		fmt.Fprintf(e.progress(), "  warning: %s not stopped: %v\n", unit, err)
		return
	}
	defer release()
	units := c.Units(j.env.Scope)
	p, err := newProxy(bg, units)
	var s proxyState
	if err == nil {
		s, err = p.read(ctx)
	}
	switch {
	case err != nil:
		fmt.Fprintf(e.progress(), "  warning: %s not stopped: cannot tell where the proxy sends traffic: %v\n", unit, err)
	case s.colour == j.colour:
		fmt.Fprintf(e.progress(), "  %s serves again: left running\n", unit)
	default:
		if err := units.Stop(ctx, unit); err != nil {
			fmt.Fprintf(e.progress(), "  warning: stop %s: %v\n", unit, err)
			return
		}
		fmt.Fprintf(e.progress(), "  %s stopped\n", unit)
	}
}

// readColourLink is the release current-<colour> names, or "".
func readColourLink(appPath, colour string) string {
	target, err := os.Readlink(filepath.Join(appPath, colourLink(colour)))
	if err != nil {
		return ""
	}
	name, ok := strings.CutPrefix(target, releasesDir+"/")
	if !ok || !isPlainName(name) {
		return ""
	}
	return name
}

// pointColourLink points current-<colour> at release atomically, as
// switchCurrent does current.
func pointColourLink(appPath, colour, release string) error {
	if !isPlainName(release) {
		return fmt.Errorf("point %s: bad release name %q", colourLink(colour), release)
	}
	root, err := openApp(appPath)
	if err != nil {
		return err
	}
	defer root.Close()
	link := colourLink(colour)
	tmp := fmt.Sprintf(".%s.%d", link, os.Getpid())
	_ = root.Remove(tmp)
	if err := root.Symlink(releasesDir+"/"+release, tmp); err != nil {
		return fmt.Errorf("point %s at %s: %w", link, release, err)
	}
	if err := root.Rename(tmp, link); err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("point %s at %s: %w", link, release, err)
	}
	return syncDir(root)
}

// restoreColourLink puts current-<colour> back at release, or removes it
// when there was none.
func restoreColourLink(appPath, colour, release string) error {
	if release != "" {
		return pointColourLink(appPath, colour, release)
	}
	root, err := openApp(appPath)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.Remove(colourLink(colour)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", colourLink(colour), err)
	}
	return nil
}

func orNone(colour string) string {
	if colour == "" {
		return "no colour"
	}
	return colour
}
