package forgestatus

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/forge"
)

// ErrRetryable and ErrPermanent classify every *Error: errors.Is(err,
// ErrRetryable) says a later try may succeed.
var (
	ErrRetryable = errors.New("retryable")
	ErrPermanent = errors.New("permanent")
)

// Error is why a report was not made.
type Error struct {
	Forge forge.Kind
	// Op is what was being done: "create deployment", "commit status"...
	Op string
	// Status is the forge's HTTP status, 0 when none came back.
	Status int
	// Retryable says a later try may succeed: no answer, 408, 429, 5xx,
	// or a rate limit answered 403.
	Retryable bool
	// RetryAfter is how long the forge asked to wait (Retry-After, or
	// GitHub's X-RateLimit-Reset), 0 when it did not say.
	RetryAfter time.Duration
	// Message is the forge's message (or the network error), capped at
	// MaxMessage characters, without control characters or the token.
	Message string
}

// MaxMessage bounds Error.Message, in characters.
const MaxMessage = 300

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", e.Forge, e.Op)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if h := e.hint(); h != "" {
		b.WriteString("; " + h)
	}
	return b.String()
}

// hint says what the operator can do about a permanent answer.
func (e *Error) hint() string {
	switch e.Status {
	case http.StatusUnauthorized:
		return fmt.Sprintf("check git.%s.status.token: the forge does not accept it", e.Forge)
	case http.StatusForbidden:
		if !e.Retryable {
			return "the token lacks the permission to write commit statuses (or deployments) on this repository"
		}
	case http.StatusNotFound:
		return "the repository or commit is unknown to the forge, or hidden from the token; check repository and api_url"
	}
	return ""
}

// Is makes errors.Is(err, ErrRetryable) and errors.Is(err, ErrPermanent)
// answer by Retryable.
func (e *Error) Is(target error) bool {
	return (target == ErrRetryable && e.Retryable) || (target == ErrPermanent && !e.Retryable)
}

// Retry reports whether err is worth trying again, and after how long the
// forge asked to wait (0 when it did not say).
func Retry(err error) (bool, time.Duration) {
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable, e.RetryAfter
	}
	return false, 0
}

// maxRetryAfter bounds a wait a forge asks for, so that a wrong clock or
// header cannot park a report for days.
const maxRetryAfter = 6 * time.Hour

// retryAfter reads Retry-After (seconds or an HTTP date), then GitHub's
// X-RateLimit-Reset (epoch seconds) when X-RateLimit-Remaining is 0.
func retryAfter(h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			d = time.Duration(min(max(n, 0), int64(maxRetryAfter/time.Second))) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	} else if h.Get("X-Ratelimit-Remaining") == "0" {
		if n, err := strconv.ParseInt(h.Get("X-Ratelimit-Reset"), 10, 64); err == nil {
			d = time.Unix(n, 0).Sub(now)
		}
	}
	return min(max(d, 0), maxRetryAfter)
}

// rateLimited tells a 403 that is GitHub's rate limit from one that is a
// missing permission.
func rateLimited(h http.Header, msg string) bool {
	return h.Get("Retry-After") != "" || h.Get("X-Ratelimit-Remaining") == "0" ||
		strings.Contains(strings.ToLower(msg), "rate limit")
}

// retryableStatus reports whether an HTTP status may succeed later.
func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}
