package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestColorOnlyOnATerminalWithoutNoColor(t *testing.T) {
	tests := []struct {
		name     string
		terminal bool
		env      map[string]string
		flag     bool
		want     bool
	}{
		{"pipe", false, nil, false, false},
		{"terminal", true, map[string]string{"TERM": "xterm"}, false, true},
		{"terminal with NO_COLOR", true, map[string]string{"TERM": "xterm", "NO_COLOR": ""}, false, false},
		{"terminal with --no-color", true, map[string]string{"TERM": "xterm"}, true, false},
		{"dumb terminal", true, map[string]string{"TERM": "dumb"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{streams: Streams{OutIsTerminal: tt.terminal}, env: Env{Lookup: func(k string) (string, bool) {
				v, ok := tt.env[k]
				return v, ok
			}}, noColor: tt.flag}
			if got := a.colorOn(); got != tt.want {
				t.Errorf("colorOn = %v, want %v", got, tt.want)
			}
			painted := a.paintStatus("succeeded")
			if hasEscape := strings.Contains(painted, "\x1b["); hasEscape != tt.want {
				t.Errorf("paintStatus = %q", painted)
			}
		})
	}
}

// TestColouredColumnsStayAligned: every painted cell of a column carries
// the same invisible bytes, so tabwriter still lines the columns up.
func TestColouredColumnsStayAligned(t *testing.T) {
	a := &app{streams: Streams{OutIsTerminal: true}, env: Env{Lookup: func(k string) (string, bool) {
		if k == "TERM" {
			return "xterm", true
		}
		return "", false
	}}}
	var buf bytes.Buffer
	tb := newTable(&buf, "ID", a.paintHeader("STATUS"), "NEXT")
	for _, s := range []string{"succeeded", "failed", "skipped", "rollback_failed"} {
		tb.row("1", a.paintStatus(s), "x")
	}
	if err := tb.flush(); err != nil {
		t.Fatal(err)
	}
	var cols []int
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		plain := stripANSI(line)
		cols = append(cols, strings.LastIndex(plain, " ")+1)
	}
	for _, c := range cols[1:] {
		if c != cols[0] {
			t.Fatalf("last column starts at %v in the rendered lines:\n%s", cols, buf.String())
		}
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"", time.Time{}, false},
		{"7d", now.Add(-7 * 24 * time.Hour), false},
		{"36h", now.Add(-36 * time.Hour), false},
		{"90m", now.Add(-90 * time.Minute), false},
		{"2026-11-01", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), false},
		{"2026-11-01T10:00:00+01:00", time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), false},
		{"yesterday", time.Time{}, true},
		{"-5d", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in, now)
		if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestRunWithoutProcess(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Run(context.Background(), []string{"version"}, Streams{Out: &out, Err: &errOut}, Env{Lookup: func(string) (string, bool) { return "", false }})
	if code != ExitOK || !strings.HasPrefix(out.String(), "fraisier ") {
		t.Errorf("Run version = %d, %q, %q", code, out.String(), errOut.String())
	}
}

func TestTerminalText(t *testing.T) {
	tests := map[string]string{
		"plain\nlines\n": "plain\nlines\n",
		"Counting  14% (1/7)\rCounting 100% (7/7), done.\r\nnext\n": "Counting 100% (7/7), done.\nnext\n",
		"a\r\nb\r\n": "a\nb\n",
	}
	for in, want := range tests {
		if got := terminalText(in); got != want {
			t.Errorf("terminalText(%q) = %q, want %q", in, got, want)
		}
	}
}
