package deploy

import (
	"context"
	"fmt"
	"io"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/health"
)

func (d *deployment) checkHealth(ctx context.Context, out io.Writer) (string, error) {
	hc := d.env.HealthCheck
	if hc == nil {
		return "", nil
	}
	check, err := d.colourCheck(ctx, healthCheck(hc, d.env.Services()))
	if err != nil {
		return "", err
	}
	check.Env, check.Credential = d.as.env(), d.as.credential()
	check = waitListening(ctx, check, out)
	rep, err := health.Run(ctx, check, health.Options{
		Units: d.c.Units(d.env.Scope),
		Observer: func(a health.Attempt) {
			state := "ok"
			if !a.OK {
				state = a.Err
			}
			fmt.Fprintf(out, "try %d: %s (%s)\n", a.N, state, fmtElapsed(a.Duration))
		},
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %s", len(rep.Attempts), plural(len(rep.Attempts), "try", "tries")), nil
}

// currentHealthy says whether what runs now is healthy, for the decision to
// skip: the configured health check, or else the units being active. With
// neither there is nothing to doubt.
func (d *deployment) currentHealthy(ctx context.Context) error {
	if d.env.HealthCheck != nil {
		_, err := d.checkHealth(ctx, io.Discard)
		return err
	}
	units := d.c.Units(d.env.Scope)
	for _, u := range d.env.Services() {
		active, err := units.IsActive(ctx, u)
		if err != nil {
			return err
		}
		if !active {
			return fmt.Errorf("%s is not active", u)
		}
	}
	return nil
}

// healthCheck converts the configuration's health check into a probe.
func healthCheck(hc *config.HealthCheck, units []string) health.Check {
	c := health.Check{
		URL: hc.URL, ExpectStatus: hc.ExpectStatus, BodyContains: hc.BodyContains,
		TCPAddr: hc.TCP, Command: hc.Command, Units: units,
		Timeout: hc.Timeout.D(), Retries: hc.Retries, Interval: hc.Interval.D(),
		StartDelay: hc.StartDelay.D(), Deadline: hc.Deadline.D(),
	}
	if hc.Retries == 0 {
		// In fraises.yaml, retries: 0 means exactly one try.
		c.Retries = health.NoRetries
	}
	switch {
	case hc.URL != "":
		c.Kind = health.KindURL
	case hc.TCP != "":
		c.Kind = health.KindTCP
	case len(hc.Command) > 0:
		c.Kind = health.KindCommand
	default:
		c.Kind = health.KindUnit
	}
	return c
}
