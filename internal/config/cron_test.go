package config

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/testenv"
)

var cronCases = []struct{ cron, want string }{
	{"0 3 * * *", "*-*-* 03:00:00"},
	{"30 2 * * 1-5", "Mon..Fri *-*-* 02:30:00"},
	{"*/15 * * * *", "*-*-* *:00/15:00"},
	{"* * * * *", "*-*-* *:*:00"},
	{"0 */6 * * *", "*-*-* 00/6:00:00"},
	{"0 9-17/2 * * *", "*-*-* 09,11,13,15,17:00:00"},
	{"5,35 8-18 * * *", "*-*-* 08..18:05,35:00"},
	{"0 0 1 * *", "*-*-01 00:00:00"},
	{"0 0 1,15 * *", "*-*-01,15 00:00:00"},
	{"0 12 * jan,jul *", "*-01,07-* 12:00:00"},
	{"0 12 1 JAN-MAR *", "*-01..03-01 12:00:00"},
	{"0 0 * * sun", "Sun *-*-* 00:00:00"},
	{"0 0 * * 7", "Sun *-*-* 00:00:00"},
	{"0 0 * * 0,6", "Sat,Sun *-*-* 00:00:00"},
	{"0 0 * * 5-7", "Fri..Sun *-*-* 00:00:00"},
	{"0 0 * * 0-2", "Mon,Tue,Sun *-*-* 00:00:00"},
	{"0 0 * * 1-7", "*-*-* 00:00:00"},
	{"0 0 * * */2", "Tue,Thu,Sat,Sun *-*-* 00:00:00"},
	{"0 0 */2 * *", "*-*-01/2 00:00:00"},
	{"0 0 */2 * 1", "Mon *-*-01/2 00:00:00"}, // dom starts with *: cron ANDs too
	{"10/20 * * * *", "*-*-* *:10/20:00"},
	{"0 0 29 2 *", "*-02-29 00:00:00"},
	{"@daily", "*-*-* 00:00:00"},
	{"@midnight", "*-*-* 00:00:00"},
	{"@hourly", "*-*-* *:00:00"},
	{"@weekly", "Sun *-*-* 00:00:00"},
	{"@monthly", "*-*-01 00:00:00"},
	{"@yearly", "*-01-01 00:00:00"},
	{"  0   3  *  *  *  ", "*-*-* 03:00:00"},
}

func TestCronToOnCalendar(t *testing.T) {
	for _, tc := range cronCases {
		got, err := CronToOnCalendar(tc.cron)
		if err != nil {
			t.Errorf("CronToOnCalendar(%q): %v", tc.cron, err)
			continue
		}
		if got != tc.want {
			t.Errorf("CronToOnCalendar(%q) = %q, want %q", tc.cron, got, tc.want)
		}
	}
}

func TestCronToOnCalendarErrors(t *testing.T) {
	cases := []struct{ cron, want string }{
		{"", "cron expression has 0 fields, want 5"},
		{"0 3 * *", "cron expression has 4 fields, want 5"},
		{"0 0 3 * * *", "cron expression has 6 fields, want 5"},
		{"60 * * * *", `minute "60": 60 is outside 0..59`},
		{"* 24 * * *", `hour "24": 24 is outside 0..23`},
		{"* * 0 * *", `day of month "0": 0 is outside 1..31`},
		{"* * * 13 *", `month "13": 13 is outside 1..12`},
		{"* * * * 8", `day of week "8": 8 is outside 0..7`},
		{"* * * foo *", `month "foo": "foo" is not a number or a name (jan..dec)`},
		{"x * * * *", `minute "x": "x" is not a number`},
		{"*/0 * * * *", `minute "*/0": step "0" is not a positive number`},
		{"5-1 * * * *", `minute "5-1": range 5-1 goes backwards`},
		{"1,,2 * * * *", `minute "1,,2": empty list item`},
		{"0 0 1 * 1", "day of month (1) and day of week (1) are both restricted: cron runs when EITHER matches, OnCalendar only when BOTH do"},
		{"0 0 L * *", `day of month "L": "L" is not a number`},
		{"@reboot", "@reboot has no calendar equivalent"},
	}
	for _, tc := range cases {
		_, err := CronToOnCalendar(tc.cron)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("CronToOnCalendar(%q) error = %v, want %q", tc.cron, err, tc.want)
		}
	}
}

// systemdAnalyze returns the path of systemd-analyze; without it the test
// is unavailable (a failure under FRAISIER_TEST_STRICT=1).
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testenv.Unavailable(t, "systemd-analyze not installed (apt-get install systemd): %v", err)
	}
	return p
}

// TestOnCalendarAcceptedBySystemd checks that systemd parses every
// converted expression, and that the next elapses it computes are exactly
// the times the cron expression fires.
func TestOnCalendarAcceptedBySystemd(t *testing.T) {
	bin := systemdAnalyze(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const iterations = 8
	for _, tc := range cronCases {
		t.Run(tc.cron, func(t *testing.T) {
			cal, err := CronToOnCalendar(tc.cron)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "calendar", "--iterations=8", "--base-time="+base.Format("2006-01-02 15:04:05")+" UTC", cal)
			cmd.Env = append(os.Environ(), "TZ=UTC", "SYSTEMD_COLORS=0", "LC_ALL=C")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("systemd-analyze calendar %q: %v\n%s", cal, err, out)
			}
			var got []time.Time
			for _, line := range strings.Split(string(out), "\n") {
				line = strings.TrimSpace(line)
				if !strings.HasPrefix(line, "Next elapse:") && !strings.HasPrefix(line, "Iter. #") {
					continue
				}
				_, when, _ := strings.Cut(line, ": ")
				ts, err := time.Parse("Mon 2006-01-02 15:04:05 MST", strings.TrimSpace(when))
				if err != nil {
					t.Fatalf("parse %q: %v", line, err)
				}
				got = append(got, ts.UTC())
			}
			want := cronNext(t, tc.cron, base, iterations)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%q as %q fires at other times (-cron +systemd):\n%s", tc.cron, cal, diff)
			}
		})
	}
}

// cronNext finds the next n times expr fires strictly after from, minute
// by minute, with cron's own rules: when day of month and day of week are
// both restricted either may match.
func cronNext(t *testing.T, expr string, from time.Time, n int) []time.Time {
	t.Helper()
	if m, ok := cronMacros[expr]; ok {
		expr = m
	}
	parts := strings.Fields(expr)
	var sets [5]uint64
	for i, p := range parts {
		s, err := parseCronField(p, cronFields[i])
		if err != nil {
			t.Fatal(err)
		}
		sets[i] = s
	}
	if sets[4]&(1<<7) != 0 {
		sets[4] |= 1
	}
	domStar, dowStar := strings.HasPrefix(parts[2], "*"), strings.HasPrefix(parts[4], "*")
	in := func(set uint64, v int) bool { return set&(1<<v) != 0 }
	var out []time.Time
	for ts := from.Add(time.Minute); len(out) < n && ts.Before(from.AddDate(50, 0, 0)); {
		dom, dow := in(sets[2], ts.Day()), in(sets[4], int(ts.Weekday()))
		day := dom && dow
		if !domStar && !dowStar {
			day = dom || dow
		}
		if !day || !in(sets[3], int(ts.Month())) {
			ts = time.Date(ts.Year(), ts.Month(), ts.Day()+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if in(sets[0], ts.Minute()) && in(sets[1], ts.Hour()) {
			out = append(out, ts)
		}
		ts = ts.Add(time.Minute)
	}
	return out
}
