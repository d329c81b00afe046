package cli

import (
	"io"
	"sync"
	"unicode/utf8"
)

// Step output, step details and errors are written by deployed code and
// the tools it runs. On a terminal, control characters in them would act:
// a cursor movement and a line erased to print a fake "succeeded" line, a
// window title set, the terminal's own answerback asked for. What reaches a
// terminal from them goes through a terminalFilter first.

// terminalFilter removes what a terminal would act on rather than show:
// C0 controls but newline and tab, DEL, C1 controls, and whole CSI escape
// sequences (ESC [ ...), which carry colours and cursor movements. A
// carriage return ends a line (a lone one would let text overwrite the
// line before it), and a byte that is not UTF-8 shows as U+FFFD. It works
// on a stream: an escape sequence, a character or a CR LF split across
// writes is handled as if whole.
type terminalFilter struct {
	state filterState
	// partial is the beginning of a UTF-8 character the next write ends.
	partial []byte
}

type filterState int

const (
	plain    filterState = iota
	afterCR              // a carriage return, a newline written for it unless a newline follows
	afterESC             // an escape, dropped, and a CSI sequence if [ follows
	inCSI                // inside a CSI sequence: parameters, intermediates, then the final byte
)

const (
	esc = 0x1b
	del = 0x7f
)

// feed appends p, filtered, to dst.
func (f *terminalFilter) feed(dst, p []byte) []byte {
	if len(f.partial) > 0 {
		p = append(f.partial, p...)
		f.partial = nil
	}
	for i := 0; i < len(p); {
		b := p[i]
		switch f.state {
		case afterCR:
			f.state = plain
			dst = append(dst, '\n')
			if b == '\n' {
				i++
			}
			continue
		case afterESC:
			f.state = plain
			if b == '[' {
				f.state = inCSI
				i++
			}
			continue
		case inCSI:
			switch {
			case b >= 0x20 && b <= 0x3f: // parameters and intermediates
				i++
			case b >= 0x40 && b <= 0x7e: // the final byte
				f.state = plain
				i++
			default: // not part of a sequence: broken off, shown as text
				f.state = plain
			}
			continue
		}
		if b < utf8.RuneSelf {
			switch {
			case b == '\n' || b == '\t' || (b >= 0x20 && b != del):
				dst = append(dst, b)
			case b == '\r':
				f.state = afterCR
			case b == esc:
				f.state = afterESC
			}
			i++
			continue
		}
		if !utf8.FullRune(p[i:]) {
			f.partial = append([]byte(nil), p[i:]...)
			break
		}
		r, size := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = utf8.AppendRune(dst, utf8.RuneError)
		case r >= 0x80 && r <= 0x9f: // C1 controls
		default:
			dst = append(dst, p[i:i+size]...)
		}
		i += size
	}
	return dst
}

// flush appends what the filter holds at the end of the stream.
func (f *terminalFilter) flush(dst []byte) []byte {
	if f.state == afterCR {
		dst = append(dst, '\n')
	}
	for range f.partial {
		dst = utf8.AppendRune(dst, utf8.RuneError)
	}
	f.state, f.partial = plain, nil
	return dst
}

// terminalSafe returns s as a terminal may be given it.
func terminalSafe(s string) string {
	var f terminalFilter
	return string(f.flush(f.feed(nil, []byte(s))))
}

// terminalWriter passes what it is given on to w, filtered for a terminal.
// Close writes what it holds back (an unfinished character or a carriage
// return) and does not close w.
type terminalWriter struct {
	mu  sync.Mutex
	w   io.Writer
	f   terminalFilter
	buf []byte
}

func newTerminalWriter(w io.Writer) *terminalWriter { return &terminalWriter{w: w} }

func (t *terminalWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = t.f.feed(t.buf[:0], p)
	if len(t.buf) > 0 {
		if _, err := t.w.Write(t.buf); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (t *terminalWriter) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = t.f.flush(t.buf[:0])
	if len(t.buf) == 0 {
		return nil
	}
	_, err := t.w.Write(t.buf)
	return err
}
