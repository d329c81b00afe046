package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nicholas-fedor/shoutrrr/pkg/services/chat/discord"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/chat/matrix"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/chat/slack"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/chat/teams"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/chat/telegram"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/push/ntfy"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"

	"github.com/fraiseql/fraisier/internal/config"
)

// The headers of a webhook+ delivery (docs/notifications.md).
const (
	HeaderSignature = "X-Fraisier-Signature"
	HeaderTimestamp = "X-Fraisier-Timestamp"
	HeaderEvent     = "X-Fraisier-Event"
	HeaderDelivery  = "X-Fraisier-Delivery"
)

// Sign is the X-Fraisier-Signature of body sent at timestamp (unix
// seconds, as in X-Fraisier-Timestamp): "sha256=" and the hex HMAC-SHA256,
// keyed with the target's secret, of the timestamp, a dot and the body.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// attempt is what one send came to: the HTTP status when there was one,
// and how long the receiver asked to be left alone (Retry-After).
type attempt struct {
	status     int
	retryAfter time.Duration
}

// webhookBody is the JSON a webhook+ target receives: the message and
// the text a chat target would show.
type webhookBody struct {
	Message
	Delivery int64  `json:"delivery"`
	Title    string `json:"title"`
	Text     string `json:"text"`
}

// sendWebhook posts m, signed, to a webhook+https:// (or +http) target.
func sendWebhook(ctx context.Context, client *http.Client, t *config.NotifyTarget, id int64, m *Message, now time.Time) (attempt, error) {
	body, err := json.Marshal(webhookBody{Message: *m, Delivery: id, Title: m.Title(), Text: m.Text()})
	if err != nil {
		return attempt{}, fmt.Errorf("encode the body: %w", err)
	}
	endpoint := strings.TrimPrefix(t.URL.Reveal(), "webhook+")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return attempt{}, errors.New("the target URL is not a valid request URL")
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fraisier-notify/1")
	req.Header.Set(HeaderEvent, m.Event)
	req.Header.Set(HeaderDelivery, strconv.FormatInt(id, 10))
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign([]byte(t.Secret.Reveal()), ts, body))
	resp, err := client.Do(req)
	if err != nil {
		// Without the URL: it may carry a token.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return attempt{}, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	a := attempt{status: resp.StatusCode, retryAfter: retryAfter(resp.Header.Get("Retry-After"), now)}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return a, fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return a, nil
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// shoutrrrServices are the shoutrrr services fraisier links, by URL
// scheme: only these, not shoutrrr's router, which links all of its
// services and costs the binary several megabytes more.
var shoutrrrServices = map[string]func() types.Service{
	"slack":    func() types.Service { return &slack.Service{} },
	"discord":  func() types.Service { return &discord.Service{} },
	"teams":    func() types.Service { return &teams.Service{} },
	"matrix":   func() types.Service { return &matrix.Service{} },
	"ntfy":     func() types.Service { return &ntfy.Service{} },
	"telegram": func() types.Service { return &telegram.Service{} },
}

func isMail(raw string) bool { return strings.HasPrefix(strings.ToLower(raw), "smtp://") }

// shoutrrrService is the initialised service of a target's URL.
// shoutrrr's own log is discarded: it may quote the URL.
func shoutrrrService(raw string) (types.Service, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("the target URL does not parse")
	}
	newService, ok := shoutrrrServices[strings.ToLower(u.Scheme)]
	if !ok {
		return nil, fmt.Errorf("no service for scheme %q", u.Scheme)
	}
	s := newService()
	if err := s.Initialize(u, log.New(io.Discard, "", 0)); err != nil {
		return nil, fmt.Errorf("%s: the target URL was refused: %w", u.Scheme, err)
	}
	return s, nil
}

// sendShoutrrr sends m's text through shoutrrr to a chat target, or by
// mail, waiting at most timeout (shoutrrr's services take no context).
func sendShoutrrr(ctx context.Context, t *config.NotifyTarget, m *Message, timeout time.Duration) (attempt, error) {
	if isMail(t.URL.Reveal()) {
		mt, err := parseMailURL(t.URL.Reveal())
		if err != nil {
			return attempt{}, err
		}
		return attempt{}, mt.send(ctx, m)
	}
	s, err := shoutrrrService(t.URL.Reveal())
	if err != nil {
		return attempt{}, err
	}
	params := types.Params{}
	params.SetTitle(m.Title())
	if s.GetID() == "discord" && !strings.Contains(strings.ToLower(t.URL.Reveal()), "splitlines=") {
		// One embed per line loses lines past ten (shoutrrr reuses its batch slice).
		params["splitlines"] = "no"
	}
	if tg, ok := s.(*telegram.Service); ok {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return attempt{}, sendTelegram(ctx, tg.Config, m.Title(), m.Text())
	}
	done := make(chan error, 1)
	go func() { done <- s.Send(m.Text(), &params) }()
	select {
	case err := <-done:
		return attempt{}, withoutURL(err)
	case <-time.After(timeout):
		return attempt{}, fmt.Errorf("no answer within %s", timeout)
	}
}

// CheckTargets returns a problem for each shoutrrr target whose URL
// shoutrrr refuses (an unknown option, a missing token), so that serve
// can say so at start rather than at the first message. Problems name
// the target, never its URL.
func CheckTargets(cfg *config.Config) []error {
	scrub := scrubber(cfg.SecretValues())
	var out []error
	for name, t := range cfg.Notify.Targets {
		if t == nil || strings.HasPrefix(strings.ToLower(t.URL.Reveal()), "webhook+") {
			continue
		}
		check := func(raw string) error { _, err := shoutrrrService(raw); return err }
		if isMail(t.URL.Reveal()) {
			check = func(raw string) error { _, err := parseMailURL(raw); return err }
		}
		if err := check(t.URL.Reveal()); err != nil {
			out = append(out, fmt.Errorf("notify.targets.%s: the URL was refused: %s (see docs/notifications.md)", name, scrub(err.Error())))
		}
	}
	return out
}

// withoutURL drops the request URL, which may carry a token, from a
// transport error shoutrrr wrapped.
func withoutURL(err error) error {
	var uerr *url.Error
	if err == nil || !errors.As(err, &uerr) {
		return err
	}
	return errors.New(strings.Replace(err.Error(), uerr.Error(), uerr.Op+": "+uerr.Err.Error(), 1))
}
