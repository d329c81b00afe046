package deploy

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/fraiseql/fraisier/internal/config"
)

// Redacted is what a secret becomes in scrubbed output.
const Redacted = "[redacted]"

// Scrubber replaces secrets with Redacted in text that fraisier stores or
// prints: step output, step details, errors, progress. Deployed code and
// the tools it runs print what they like, a secret included, and what
// they print ends up in the state database, the API and the terminal.
// A nil *Scrubber scrubs nothing.
type Scrubber struct {
	secrets [][]byte // longest first: the longest secret found at a place wins
	first   [256]bool
}

// NewScrubber returns a Scrubber of the non-empty secrets, or nil when
// there are none.
func NewScrubber(secrets []string) *Scrubber {
	s := &Scrubber{}
	for _, v := range secrets {
		if v != "" && !slices.ContainsFunc(s.secrets, func(b []byte) bool { return string(b) == v }) {
			s.secrets = append(s.secrets, []byte(v))
			s.first[v[0]] = true
		}
	}
	if len(s.secrets) == 0 {
		return nil
	}
	slices.SortStableFunc(s.secrets, func(a, b []byte) int { return cmp.Compare(len(b), len(a)) })
	return s
}

// scrubberFor scrubs every secret of the configuration env belongs to.
func scrubberFor(env *config.Environment) *Scrubber {
	if env == nil || env.Fraise == nil || env.Fraise.Config == nil {
		return nil
	}
	return NewScrubber(env.Fraise.Config.SecretValues())
}

// scrub appends p, its secrets replaced, to dst. Unless final, it stops
// where what is left of p could be the beginning of a secret that more
// input would complete, and returns how much of p it consumed; the rest
// (shorter than the longest secret) must be given again with what follows.
func (s *Scrubber) scrub(dst, p []byte, final bool) ([]byte, int) {
	done := 0 // p[:done] is in dst
	for i := 0; i < len(p); {
		if !s.first[p[i]] {
			i++
			continue
		}
		rest := p[i:]
		var found []byte
		for _, sec := range s.secrets {
			if len(rest) < len(sec) {
				if !final && bytes.HasPrefix(sec, rest) {
					// A longer secret may be starting here: wait for it.
					return append(dst, p[done:i]...), i
				}
				continue
			}
			if bytes.HasPrefix(rest, sec) {
				found = sec
				break
			}
		}
		if found == nil {
			i++
			continue
		}
		dst = append(append(dst, p[done:i]...), Redacted...)
		i += len(found)
		done = i
	}
	return append(dst, p[done:]...), len(p)
}

// String returns text with every secret replaced.
func (s *Scrubber) String(text string) string {
	if s == nil || text == "" {
		return text
	}
	out, _ := s.scrub(nil, []byte(text), true)
	return string(out)
}

// Error returns err itself when its message holds no secret, and otherwise
// an error whose message is scrubbed. That error still answers errors.Is
// for what err wrapped (timeouts, cancellation, sentinels) but hides the
// original from errors.As, whose values carry the secret in their fields
// (an *execx.ExitError's output).
func (s *Scrubber) Error(err error) error {
	if s == nil || err == nil {
		return err
	}
	msg := err.Error()
	if clean := s.String(msg); clean != msg {
		return &scrubbedError{msg: clean, err: err}
	}
	return err
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }

func (e *scrubbedError) Is(target error) bool { return errors.Is(e.err, target) }

// Writer returns a writer that passes what it is given on to w, scrubbed.
// A secret split across two writes is still caught: the end of a write
// that could begin a secret is held back until the next write or Close.
func (s *Scrubber) Writer(w io.Writer) *ScrubWriter {
	return &ScrubWriter{s: s, w: w}
}

// ScrubWriter is a Scrubber's streaming side; see Scrubber.Writer. It is
// safe for concurrent use.
type ScrubWriter struct {
	s *Scrubber
	w io.Writer

	mu   sync.Mutex
	held []byte
	out  []byte
}

func (sw *ScrubWriter) Write(p []byte) (int, error) {
	if sw.s == nil {
		return sw.w.Write(p)
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	buf := append(sw.held, p...)
	var n int
	sw.out, n = sw.s.scrub(sw.out[:0], buf, false)
	sw.held = append(sw.held[:0], buf[n:]...)
	if len(sw.out) > 0 {
		if _, err := sw.w.Write(sw.out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Close writes what was held back, scrubbed. It does not close the
// underlying writer.
func (sw *ScrubWriter) Close() error {
	if sw.s == nil {
		return nil
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if len(sw.held) == 0 {
		return nil
	}
	out, _ := sw.s.scrub(nil, sw.held, true)
	sw.held = sw.held[:0]
	_, err := sw.w.Write(out)
	return err
}
