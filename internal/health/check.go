package health

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
)

// Kind is what a Check probes.
type Kind string

// The kinds of probe.
const (
	KindURL     Kind = "url"     // an HTTP(S) GET answers with the expected status
	KindTCP     Kind = "tcp"     // a TCP connection is accepted
	KindCommand Kind = "command" // an argv exits 0
	KindUnit    Kind = "unit"    // every systemd unit is active
)

// Defaults applied to zero fields of a Check.
const (
	DefaultExpectStatus = 200
	DefaultTimeout      = 5 * time.Second
	DefaultRetries      = 10
	DefaultInterval     = time.Second
	DefaultDeadline     = 60 * time.Second
)

// NoRetries in Check.Retries asks for a single try; zero means DefaultRetries.
const NoRetries = -1

// maxBody caps what is read of a response to look for BodyContains, so a
// service that streams forever cannot make a probe hold memory or time.
const maxBody = 64 << 10

// Check describes one probe and its retry schedule. It mirrors the config
// file's health_check but does not depend on it: the caller converts. Zero
// durations and counts take the defaults above.
type Check struct {
	Kind Kind

	// URL is probed with GET for KindURL; only http and https, and no
	// user:password, because a health check never sends credentials.
	URL string
	// ExpectStatus is the status KindURL wants (default 200). Redirects are
	// not followed, so a 301 is compared like any other status.
	ExpectStatus int
	// BodyContains, when set, must appear in the first 64 KiB of the body.
	BodyContains string

	// TCPAddr is the host:port KindTCP connects to.
	TCPAddr string

	// Command is the argv KindCommand runs (never through a shell), in Dir
	// with Env ("KEY=value") added to the little it inherits of fraisier's
	// environment (execx's allowlist).
	Command []string
	Dir     string
	Env     []string
	// Credential, when set, is the user and groups the command runs as.
	Credential *syscall.Credential

	// Units are the systemd units KindUnit asks Options.Units about.
	Units []string

	// Timeout bounds each try (default 5s).
	Timeout time.Duration
	// Retries is the number of tries after the first (default 10;
	// NoRetries, or any negative value, for none).
	Retries int
	// Interval is the pause between the end of one try and the start of the
	// next (default 1s).
	Interval time.Duration
	// StartDelay is waited before the first try.
	StartDelay time.Duration
	// Deadline bounds all tries together, counted from the first try, so a
	// StartDelay does not eat into it (default 60s).
	Deadline time.Duration
}

// Validate reports whether c can be run at all, before any try.
func (c Check) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("health: invalid %s check: %w", c.kindName(), err)
	}
	return nil
}

func (c Check) kindName() string {
	if c.Kind == "" {
		return "untyped"
	}
	return string(c.Kind)
}

func (c Check) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", c.Timeout}, {"interval", c.Interval}, {"start_delay", c.StartDelay}, {"deadline", c.Deadline}} {
		if d.v < 0 {
			return fmt.Errorf("%s %s is negative", d.name, d.v)
		}
	}
	switch c.Kind {
	case KindURL:
		if c.ExpectStatus != 0 && (c.ExpectStatus < 100 || c.ExpectStatus > 599) {
			return fmt.Errorf("expect_status %d is not an HTTP status", c.ExpectStatus)
		}
		_, err := parseURL(c.URL)
		return err
	case KindTCP:
		host, port, err := net.SplitHostPort(c.TCPAddr)
		if err != nil {
			return fmt.Errorf("tcp address: %w", err)
		}
		if host == "" || port == "" {
			return fmt.Errorf("tcp address %q: want host:port", c.TCPAddr)
		}
		return nil
	case KindCommand:
		if len(c.Command) == 0 || c.Command[0] == "" {
			return errors.New("empty command")
		}
		return nil
	case KindUnit:
		if len(c.Units) == 0 {
			return errors.New("no units")
		}
		for _, u := range c.Units {
			if strings.TrimSpace(u) == "" {
				return errors.New("empty unit name")
			}
		}
		return nil
	case "":
		return errors.New("kind not set")
	default:
		return fmt.Errorf("unknown kind %q (want url, tcp, command or unit)", c.Kind)
	}
}

func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL, which may hold a password; keep only
		// the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %s: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url %s: no host", u.Redacted())
	}
	if u.User != nil {
		return nil, fmt.Errorf("url %s: must not carry credentials", u.Redacted())
	}
	return u, nil
}

// withDefaults fills the zero fields; it does not validate.
func (c Check) withDefaults() Check {
	if c.Kind == KindURL && c.ExpectStatus == 0 {
		c.ExpectStatus = DefaultExpectStatus
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.Retries == 0:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Deadline == 0 {
		c.Deadline = DefaultDeadline
	}
	return c
}

// target is what the check probes, as shown in messages.
func (c Check) target() string {
	switch c.Kind {
	case KindURL:
		if u, err := url.Parse(c.URL); err == nil {
			return "GET " + u.Redacted()
		}
		return "GET " + c.URL
	case KindTCP:
		return "tcp " + c.TCPAddr
	case KindCommand:
		return "command " + execx.QuoteArgv(c.Command)
	case KindUnit:
		return "unit " + strings.Join(c.Units, " ")
	}
	return string(c.Kind)
}
