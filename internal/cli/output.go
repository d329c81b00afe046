package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// colorOn reports whether human output may use colour: only on a terminal,
// never with NO_COLOR (https://no-color.org) or --no-color, never for dumb
// terminals.
func (a *app) colorOn() bool {
	if a.noColor || !a.streams.OutIsTerminal {
		return false
	}
	if _, set := a.env.Lookup("NO_COLOR"); set {
		return false
	}
	return a.env.get("TERM") != "dumb"
}

const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
	// ansiDefault has the same length as the colours above, so that every
	// painted cell of a column carries the same number of invisible bytes
	// and tabwriter still aligns the column.
	ansiDefault = "\x1b[39m"
)

// paintStatus colours a deployment status or webhook outcome by what it
// means for the operator: green is fine, yellow needs a look, red needs action.
func (a *app) paintStatus(s string) string {
	if !a.colorOn() {
		return s
	}
	var c string
	st, out := store.Status(s), store.Outcome(s)
	switch {
	case st == store.StatusSucceeded, out == store.OutcomeAccepted:
		c = ansiGreen
	case slices.Contains([]store.Status{store.StatusRolledBack, store.StatusInterrupted, store.StatusSuperseded}, st),
		out == store.OutcomeDuplicate, out == store.OutcomeIgnored:
		c = ansiYellow
	case st == store.StatusFailed, st == store.StatusRollbackFailed, out == store.OutcomeRejected:
		c = ansiRed
	case st == store.StatusRunning, st == store.StatusQueued:
		c = ansiBlue
	default:
		c = ansiDefault
	}
	return c + s + ansiReset
}

// paintHeader gives a header cell the same invisible width as the painted
// cells below it.
func (a *app) paintHeader(s string) string {
	if !a.colorOn() {
		return s
	}
	return ansiDefault + s + ansiReset
}

// table writes aligned columns. Colour escapes count as width to tabwriter,
// so a coloured column must be painted in every row, header included
// (paintStatus, paintHeader).
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if strings.Join(header, "") != "" {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Human times are UTC so that two operators in different zones read the same
// line the same way.
const humanTime = "2006-01-02 15:04:05Z"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(humanTime)
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}

func fmtDurationMS(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", ms)
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	if sha == "" {
		return "-"
	}
	return sha
}

// nothingYet replaces an empty table: a header alone reads like a fault.
// filtered says the command's filters may be what left nothing.
func nothingYet(w io.Writer, filtered bool, empty string) error {
	if filtered {
		empty = "nothing matches these filters"
	}
	_, err := fmt.Fprintln(w, empty)
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table cell on one line and bounded in width.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

// flatLine keeps a recorded detail or error, which can quote what a tool
// printed, on the one line it is shown on: a line break in it would start
// a line that reads as fraisier's own (or break a table).
var flatLine = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace

// shown is text that others wrote (deployed code and its tools, a
// repository's commits, a webhook's sender, a delivery's recorded reason)
// as a cell or a line of human output shows it: on a terminal, filtered of
// what the terminal would act on (terminalSafe); on one line, so that a
// line break in it cannot start a line that reads as fraisier's own; and
// without tabs, which would start a new column. JSON never goes through it.
func (a *app) shown(s string) string {
	if a.streams.OutIsTerminal {
		s = terminalSafe(s)
	}
	return cellLine(s)
}

var cellLine = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ", "\t", " ").Replace

// terminalText keeps what a terminal would show of captured output: a
// progress line redrawn with carriage returns shows only its last state.
func terminalText(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		l = strings.TrimRight(l, "\r")
		if j := strings.LastIndexByte(l, '\r'); j >= 0 {
			l = l[j+1:]
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}
