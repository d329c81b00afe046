package cli

import (
	"bytes"
	"testing"
)

func TestTerminalSafe(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "npm ok\n\tdone\n", "npm ok\n\tdone\n"},
		{"unicode", "✓ ünïcödé – 完成\n", "✓ ünïcödé – 完成\n"},
		{"crlf", "a\r\nb\r\n", "a\nb\n"},
		{"lone carriage return ends the line", "real line\rfake line\n", "real line\nfake line\n"},
		{"carriage return at the end", "x\r", "x\n"},
		{"colours", "\x1b[31merror\x1b[0m: \x1b[1;32mok\x1b[m\n", "error: ok\n"},
		{"fake succeeded line", "\x1b[1A\x1b[2K\rdeployment 7: succeeded\n", "\ndeployment 7: succeeded\n"},
		{"window title", "\x1b]0;pwned\x07build ok\n", "]0;pwnedbuild ok\n"},
		{"title ended by ST", "\x1b]2;x\x1b\\ok", "]2;x\\ok"},
		{"bell, backspace, NUL, DEL", "a\x07b\x08c\x00d\x7fe", "abcde"},
		{"other C0", "\x01\x02\x0b\x0c\x0e\x1f", ""},
		{"C1 controls", "a\u009b31mb\u0085c\u009dd", "a31mbcd"},
		{"invalid UTF-8", "a\xffb\xc3", "a\ufffdb\ufffd"},
		{"escape alone at the end", "ok\x1b", "ok"},
		{"CSI broken off by a newline", "\x1b[12\nnext", "\nnext"},
		{"escape then text", "\x1bcreset", "creset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := terminalSafe(tt.in); got != tt.want {
				t.Errorf("terminalSafe(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// Written in two parts, split anywhere, it comes out the same.
			for cut := 0; cut <= len(tt.in); cut++ {
				var out bytes.Buffer
				w := newTerminalWriter(&out)
				w.Write([]byte(tt.in[:cut]))
				w.Write([]byte(tt.in[cut:]))
				w.Close()
				if out.String() != tt.want {
					t.Errorf("split at %d: %q, want %q", cut, out.String(), tt.want)
				}
			}
		})
	}
}
