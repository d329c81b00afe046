package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
)

// commandGrace is the SIGTERM-to-SIGKILL time for a probe command. A probe
// holds nothing worth a clean shutdown, and execx's default grace would let
// a stuck probe outlive its try and the Deadline by seconds.
const commandGrace = 500 * time.Millisecond

func urlProbe(c Check, base *http.Client) probe {
	client := &http.Client{Transport: &http.Transport{
		// The service is on this host or its network; a proxy from the
		// environment would answer for the proxy, not the release.
		Proxy:       nil,
		DialContext: (&net.Dialer{}).DialContext,
		// A restarted service must be reached through a new connection,
		// not one kept alive to the process it replaced.
		DisableKeepAlives: true,
	}}
	if base != nil {
		cp := *base
		client = &cp
	}
	// A redirect is an answer like any other, compared to ExpectStatus;
	// following it could leave the host being checked.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client.Jar = nil

	return func(ctx context.Context) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
		if err != nil {
			return 0, fmt.Errorf("build request: %w", unwrapURLError(err))
		}
		req.Header.Set("User-Agent", "fraisier-health")
		resp, err := client.Do(req)
		if err != nil {
			return 0, unwrapURLError(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != c.ExpectStatus {
			return resp.StatusCode, fmt.Errorf("status %d, want %d", resp.StatusCode, c.ExpectStatus)
		}
		if c.BodyContains == "" {
			return resp.StatusCode, nil
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return resp.StatusCode, fmt.Errorf("read body: %w", err)
		}
		if !bytes.Contains(body, []byte(c.BodyContains)) {
			return resp.StatusCode, fmt.Errorf("status %d but body does not contain %q (%d bytes read)", resp.StatusCode, c.BodyContains, len(body))
		}
		return resp.StatusCode, nil
	}
}

// unwrapURLError drops url.Error's "Get \"http://...\":" prefix, which the
// Failure already names as its target.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func tcpProbe(c Check) probe {
	return func(ctx context.Context) (int, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.TCPAddr)
		if err != nil {
			return 0, err
		}
		return 0, conn.Close()
	}
}

func commandProbe(c Check) probe {
	return func(ctx context.Context) (int, error) {
		// The try's context bounds the command; execx kills its whole
		// process group when that context is done.
		res, err := execx.Run(ctx, execx.Cmd{Argv: c.Command, Dir: c.Dir, Env: c.Env, Credential: c.Credential, Grace: commandGrace})
		if err == nil {
			return 0, nil
		}
		var ee *execx.ExitError
		if errors.As(err, &ee) {
			msg := fmt.Sprintf("exit status %d", ee.Code)
			if t := execx.LastLine(string(res.Output)); t != "" {
				msg += ": " + t
			}
			return 0, errors.New(msg)
		}
		return 0, err
	}
}

func unitProbe(c Check, units UnitChecker) probe {
	return func(ctx context.Context) (int, error) {
		for _, u := range c.Units {
			active, err := units.IsActive(ctx, u)
			if err != nil {
				return 0, fmt.Errorf("is-active %s: %w", u, err)
			}
			if !active {
				return 0, fmt.Errorf("%s is not active", u)
			}
		}
		return 0, nil
	}
}
