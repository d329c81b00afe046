package migrate

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/fraiseql/fraisier/internal/execx"
)

const redacted = "xxxxx"

// secrets are the strings that must not leave the package: the database URL
// and its password in every spelling a tool might print it in.
type secrets struct {
	// pairs of (secret, replacement), longest secret first so that the URL
	// is replaced by its redacted form before its password is blanked.
	pairs []string
	r     *strings.Replacer
}

func newSecrets(rawURL string) *secrets {
	s := &secrets{}
	if rawURL == "" {
		s.r = strings.NewReplacer()
		return s
	}
	type pair struct{ secret, repl string }
	var ps []pair
	ps = append(ps, pair{rawURL, redactURL(rawURL)})
	for _, pw := range urlPasswords(rawURL) {
		ps = append(ps, pair{pw, redacted})
		if esc := url.QueryEscape(pw); esc != pw {
			ps = append(ps, pair{esc, redacted})
		}
		if esc := url.PathEscape(pw); esc != pw {
			ps = append(ps, pair{esc, redacted})
		}
	}
	sort.SliceStable(ps, func(i, j int) bool { return len(ps[i].secret) > len(ps[j].secret) })
	for _, p := range ps {
		if p.secret != "" {
			s.pairs = append(s.pairs, p.secret, p.repl)
		}
	}
	s.r = strings.NewReplacer(s.pairs...)
	return s
}

// urlPasswords finds the passwords a URL carries, wherever it keeps them,
// as written and decoded.
func urlPasswords(raw string) []string {
	var out []string
	scheme, rest, ok := baseScheme(raw)
	if ok && (scheme == "postgres" || scheme == "postgresql") {
		if u, err := parsePostgresURL(rest); err == nil && u.password != "" {
			out = append(out, u.password)
		}
	}
	if u, err := url.Parse(raw); err == nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			out = append(out, pw)
		}
		if pw := u.Query().Get("password"); pw != "" {
			out = append(out, pw)
		}
	}
	// The raw userinfo password and password parameter, escapes and all,
	// as a tool echoing the URL would print them.
	if _, after, ok := strings.Cut(raw, "://"); ok {
		authority, _, _ := strings.Cut(after, "/")
		_, query, _ := strings.Cut(after, "?")
		if i := strings.LastIndexByte(authority, '@'); i >= 0 {
			if _, pw, ok := strings.Cut(authority[:i], ":"); ok && pw != "" {
				out = append(out, pw)
			}
		}
		for kv := range strings.SplitSeq(query, "&") {
			k, pw, _ := strings.Cut(kv, "=")
			if key, err := url.QueryUnescape(k); err == nil && key == "password" && pw != "" {
				out = append(out, pw)
			}
		}
	}
	return out
}

// redactURL is the URL as it may be shown: password replaced.
func redactURL(raw string) string {
	out := raw
	for _, pw := range urlPasswords(raw) {
		out = strings.ReplaceAll(out, pw, redacted)
	}
	if out == raw && strings.Contains(raw, "@") {
		if _, err := url.Parse(raw); err != nil {
			return "(database URL)"
		}
	}
	return out
}

// scrub replaces every secret in text.
func (s *secrets) scrub(text string) string {
	if len(s.pairs) == 0 {
		return text
	}
	return s.r.Replace(text)
}

func (s *secrets) in(text string) bool {
	for i := 0; i < len(s.pairs); i += 2 {
		if strings.Contains(text, s.pairs[i]) {
			return true
		}
	}
	return false
}

// scrubError returns err itself when neither its message nor a captured
// tool output inside it holds a secret. Otherwise it returns an error with
// the secrets replaced that still answers errors.Is for what err wrapped
// (timeouts, cancellation, our sentinels) but hides the original values from
// errors.As, since those carry the secret in their fields.
func (s *secrets) scrubError(err error) error {
	if err == nil || len(s.pairs) == 0 {
		return err
	}
	leaks := s.in(err.Error())
	var ee *execx.ExitError
	if errors.As(err, &ee) && (s.in(ee.Output) || s.in(strings.Join(ee.Argv, " "))) {
		leaks = true
	}
	if !leaks {
		return err
	}
	return &redactedError{msg: s.scrub(err.Error()), err: err}
}

// scrubExit rebuilds an *execx.ExitError with its argv and output scrubbed,
// so that a caller who unwraps it to show the output shows no secret.
func (s *secrets) scrubExit(err error) error {
	var ee *execx.ExitError
	if err == nil || !errors.As(err, &ee) || ee != err {
		return s.scrubError(err)
	}
	argv := make([]string, len(ee.Argv))
	for i, a := range ee.Argv {
		argv[i] = s.scrub(a)
	}
	return &execx.ExitError{Argv: argv, Code: ee.Code, Output: s.scrub(ee.Output)}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// scrubWriter passes tool output on line by line with secrets replaced. It
// holds back an unfinished line so that a secret split across two writes is
// still caught; flush releases it when the tool has exited.
type scrubWriter struct {
	mu  sync.Mutex
	w   io.Writer
	s   *secrets
	buf []byte
}

// maxHeldLine bounds what a scrubWriter holds back waiting for a newline
// (progress bars redraw with \r and may never send one).
const maxHeldLine = 16 << 10

func (sw *scrubWriter) Write(p []byte) (int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.buf = append(sw.buf, p...)
	i := bytes.LastIndexByte(sw.buf, '\n')
	if i < 0 && len(sw.buf) < maxHeldLine {
		return len(p), nil
	}
	if i < 0 {
		i = len(sw.buf) - 1
	}
	if _, err := io.WriteString(sw.w, sw.s.scrub(string(sw.buf[:i+1]))); err != nil {
		return len(p), err
	}
	sw.buf = append(sw.buf[:0], sw.buf[i+1:]...)
	return len(p), nil
}

func (sw *scrubWriter) flush() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if len(sw.buf) > 0 {
		_, _ = io.WriteString(sw.w, sw.s.scrub(string(sw.buf)))
		sw.buf = sw.buf[:0]
	}
}
