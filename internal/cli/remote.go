package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

// TokenEnv names the environment variable that holds the deploy API token
// when --token-file is not given.
const TokenEnv = "FRAISIER_TOKEN"

// remoteFlags are the flags that send a command to a remote fraisier
// serve instead of running it here.
type remoteFlags struct {
	url, tokenFile string
}

func addRemoteFlags(cmd *cobra.Command, f *remoteFlags) {
	cmd.Flags().StringVar(&f.url, "remote", "", "drive the fraisier serve at this URL through its deploy API instead of deploying here (https://host, or http:// on a loopback address)")
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "with --remote: a file holding the API token (default: $"+TokenEnv+")")
}

// remoteClient talks to a remote fraisier serve's API with a token. The
// token goes in the Authorization header and nowhere else: never in an
// error, a URL or the output.
type remoteClient struct {
	base  *url.URL
	token string
	http  *http.Client
	poll  time.Duration
}

// remote builds the client of f, or a usage error saying what is missing.
func (a *app) remote(f remoteFlags) (*remoteClient, error) {
	u, err := url.Parse(f.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, &usageError{fmt.Errorf("--remote %q: want the URL of fraisier serve, such as https://deploy.example.com", redactURL(f.url))}
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return nil, &usageError{fmt.Errorf("--remote %s: plain http to another host would send the token in clear: use https:// (a TLS proxy in front of fraisier serve)", u.Redacted())}
	}
	var token string
	switch {
	case f.tokenFile != "":
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, &usageError{fmt.Errorf("--token-file: %w", err)}
		}
		token = strings.TrimSpace(string(b))
	default:
		token = strings.TrimSpace(a.env.get(TokenEnv))
	}
	if token == "" {
		return nil, &usageError{fmt.Errorf("--remote needs a token: --token-file FILE or $%s (fraisier tokens create NAME --scope deploy:FRAISE/ENV on the server)", TokenEnv)}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &remoteClient{base: u, token: token, http: &http.Client{Timeout: 30 * time.Second}, poll: time.Second}, nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

// redactURL is a URL for an error: without a password, or nothing of it
// when it does not parse.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// do sends a request and decodes a 2xx answer into out; any other answer
// is an error with the server's reason and the exit code it means.
func (c *remoteClient) do(ctx context.Context, method, path string, body, out any) error {
	var in io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		in = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, in)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %s%s: %w", method, c.base.Redacted(), path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s%s: read the answer: %w", method, c.base.Redacted(), path, err)
	}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s%s: the answer is not fraisier's JSON: %w", method, c.base.Redacted(), path, err)
		}
		return nil
	}
	return c.refusal(method, path, resp, b)
}

// refusal is the error a non-2xx answer with body b means, with the
// server's reason and the exit code it means.
func (c *remoteClient) refusal(method, path string, resp *http.Response, b []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(b[:min(len(b), 200)]))
	}
	err := &answerError{status: resp.StatusCode, err: fmt.Errorf("%s %s%s: %s: %s", method, c.base.Redacted(), path, resp.Status,
		strings.ReplaceAll(e.Error, c.token, "[token]"))}
	switch resp.StatusCode {
	case http.StatusBadRequest:
		return &usageError{err}
	case http.StatusNotFound:
		return withCode(ExitNotFound, err)
	case http.StatusConflict:
		return withCode(ExitLocked, err)
	}
	return err
}

// answerError is a remote serve's refusal, with its HTTP status.
type answerError struct {
	status int
	err    error
}

func (e *answerError) Error() string { return e.err.Error() }
func (e *answerError) Unwrap() error { return e.err }

// transient says whether a request may be tried again: it got no answer,
// or one that says to retry (a restart, a proxy's hiccup, the rate limit).
func transient(err error) bool {
	var ae *answerError
	if !errors.As(err, &ae) {
		return true
	}
	switch ae.status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// remoteQueued is the API's answer to a deploy or rollback it queued.
type remoteQueued struct {
	DeploymentID int64  `json:"deployment_id"`
	SHA          string `json:"sha"`
	Ref          string `json:"ref"`
	Superseded   int64  `json:"superseded"`
	StatusURL    string `json:"status_url"`
}

// remoteDeployment is GET /api/deployments/{id}.
type remoteDeployment struct {
	Deployment store.Deployment `json:"deployment"`
	Steps      []store.Step     `json:"steps"`
}

// remoteRun posts a deploy or rollback to the remote serve, then follows
// the deployment it queued to its end, printing each step as it completes
// and exiting as a local deploy would.
func (a *app) remoteRun(ctx context.Context, f remoteFlags, path string, body map[string]string, asJSON bool) error {
	c, err := a.remote(f)
	if err != nil {
		return err
	}
	var q remoteQueued
	if err := c.do(ctx, http.MethodPost, path, body, &q); err != nil {
		return err
	}
	w, done := a.progress(nil, asJSON)
	defer done()
	fmt.Fprintf(w, "deployment %d: queued on %s (%s/%s at %s)\n", q.DeploymentID, c.base.Redacted(), body["fraise"], body["environment"], shortSHA(q.SHA))
	if q.Superseded != 0 {
		fmt.Fprintf(w, "  it replaces deployment %d, which was waiting\n", q.Superseded)
	}
	d, err := c.follow(ctx, w, q.DeploymentID)
	if err != nil {
		return err
	}
	if asJSON {
		done()
		out := deployResultJSON{DeploymentID: d.ID, Fraise: d.Fraise, Environment: d.Environment, Status: d.Status,
			OldSHA: d.OldSHA, NewSHA: d.NewSHA, Release: d.Release, Error: d.Error, Interrupted: []int64{}}
		if err := writeJSON(a.streams.Out, out); err != nil {
			return err
		}
	}
	res := deploy.Result{DeploymentID: d.ID, Status: d.Status}
	if d.Error != "" {
		res.Err = errors.New(d.Error)
	}
	return deployExit(res)
}

// follow polls the deployment until it ends, printing its steps as they
// complete, and returns it as it ended.
func (c *remoteClient) follow(ctx context.Context, w io.Writer, id int64) (store.Deployment, error) {
	printed := map[int64]bool{}
	var status store.Status
	misses := 0
	for {
		var got remoteDeployment
		err := c.do(ctx, http.MethodGet, "/api/deployments/"+strconv.FormatInt(id, 10), nil, &got)
		switch {
		case ctx.Err() != nil:
			return store.Deployment{}, fmt.Errorf("stopped following deployment %d, which goes on on the server: fraisier status --remote, or GET /api/deployments/%d", id, id)
		case err != nil && transient(err) && misses < 60:
			// The server restarting, a proxy's hiccup: the deployment is
			// durable, and is asked for again.
			misses++
		case err != nil:
			return store.Deployment{}, err
		default:
			misses = 0
			d := got.Deployment
			if d.Status != status && d.Status == store.StatusRunning {
				fmt.Fprintf(w, "deployment %d: running on %s from %s\n", d.ID, orDash(d.Host), orDash(shortSHA(d.OldSHA)))
			}
			status = d.Status
			for _, s := range got.Steps {
				if s.Status != store.StepRunning && !printed[s.ID] {
					printed[s.ID] = true
					fmt.Fprintln(w, stepLine(s))
				}
			}
			if slices.Contains(store.TerminalStatuses(), d.Status) {
				fmt.Fprintf(w, "deployment %d: %s\n", d.ID, d.Status)
				if d.Error != "" && d.Status != store.StatusSucceeded {
					fmt.Fprintf(w, "  %s\n", oneLine(d.Error, 500))
				}
				return d, nil
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(c.poll):
		}
	}
}

// stepLine is a finished step as a local deployment prints it.
func stepLine(s store.Step) string {
	elapsed := ""
	if s.FinishedAt != nil {
		d := s.FinishedAt.Sub(s.StartedAt)
		if d < time.Second {
			elapsed = fmt.Sprintf("%dms", d.Milliseconds())
		} else {
			elapsed = fmt.Sprintf("%.1fs", d.Seconds())
		}
	}
	switch {
	case s.Status == store.StepSkipped:
		return fmt.Sprintf("→ %s … skipped (%s)", s.Name, oneLine(s.Detail, 500))
	case s.Status == store.StepFailed:
		return fmt.Sprintf("→ %s … failed %s\n  %s", s.Name, elapsed, oneLine(s.Detail, 500))
	case s.Detail != "":
		return fmt.Sprintf("→ %s … ok %s (%s)", s.Name, elapsed, oneLine(s.Detail, 500))
	}
	return fmt.Sprintf("→ %s … ok %s", s.Name, elapsed)
}

// remoteFraises is GET /api/fraises.
type remoteFraises struct {
	Fraises []struct {
		Fraise       string                   `json:"fraise"`
		Environments []server.EnvironmentJSON `json:"environments"`
	} `json:"fraises"`
}

// remoteStatus prints what the remote serve says runs where (its read
// API: the token needs the read scope).
func (a *app) remoteStatus(ctx context.Context, f remoteFlags, fraise, env string, asJSON bool) error {
	c, err := a.remote(f)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/api/fraises", nil, &raw); err != nil {
		return err
	}
	var got remoteFraises
	if err := json.Unmarshal(raw, &got); err != nil {
		return fmt.Errorf("GET %s/api/fraises: %w", c.base.Redacted(), err)
	}
	var rows []server.EnvironmentJSON
	for _, fr := range got.Fraises {
		for _, st := range fr.Environments {
			if (fraise == "" || st.Fraise == fraise) && (env == "" || st.Environment == env || baseEnv(st.Environment) == env) {
				rows = append(rows, st)
			}
		}
	}
	if (fraise != "" || env != "") && len(rows) == 0 {
		return withCode(ExitNotFound, fmt.Errorf("%s has no %s", c.base.Redacted(), strings.Trim(fraise+"/"+env, "/")))
	}
	if asJSON {
		return writeJSON(a.streams.Out, map[string]any{"targets": orEmpty(rows)})
	}
	hosts := slices.ContainsFunc(rows, func(r server.EnvironmentJSON) bool { return r.Host != "" })
	t := newTable(a.streams.Out, withNode(hosts, []string{"FRAISE", "ENVIRONMENT", "STATUS", "SHA", "RELEASE", "DEPLOYED", "BY"}, "NODE", "HEALTH")...)
	now := time.Now()
	for _, st := range rows {
		// The server's answer, in status's row shape for the host cells.
		hr := targetStatusJSON{Host: st.Host, NodeAlive: st.NodeAlive, HostHealthJSON: st.HostHealthJSON}
		t.row(withNode(hosts, []string{st.Fraise, st.Environment, a.paintStatus(string(st.Status)), orDash(shortSHA(st.CurrentSHA)), orDash(a.shown(st.CurrentRelease)),
			fmtTime(st.DeployedAt), orDash(a.shown(st.DeployedBy))}, nodeCell(hr), healthCell(hr, now))...)
	}
	return t.flush()
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// remoteDeploy is fraisier deploy --remote.
func (a *app) remoteDeploy(ctx context.Context, f remoteFlags, args []string, opts deployOptions) error {
	if opts.plan || opts.force || opts.wait != 0 {
		return &usageError{errors.New("--plan, --force and --wait act on this host: with --remote the server's queue decides (a deployment waits its turn there)")}
	}
	return a.remoteRun(ctx, f, "/api/deploy", map[string]string{"fraise": args[0], "environment": args[1], "ref": opts.ref}, opts.asJSON)
}

// remoteRollback is fraisier rollback --remote.
func (a *app) remoteRollback(ctx context.Context, f remoteFlags, args []string, to string, noMigrate bool, wait time.Duration, asJSON bool) error {
	if noMigrate || wait != 0 {
		return &usageError{errors.New("--no-migrate and --wait act on this host: a rollback through the API migrates down as the server's configuration says")}
	}
	return a.remoteRun(ctx, f, "/api/rollback", map[string]string{"fraise": args[0], "environment": args[1], "to": to}, asJSON)
}

// local says whether the command runs here; --token-file without --remote
// is a mistake.
func (f remoteFlags) local() (bool, error) {
	if f.url == "" && f.tokenFile != "" {
		return false, &usageError{errors.New("--token-file goes with --remote URL")}
	}
	return f.url == "", nil
}

// remoteOr is err, or else what run returns: the command sent to the
// remote serve.
func remoteOr(err error, run func() error) error {
	if err != nil {
		return err
	}
	return run()
}
