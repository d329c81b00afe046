package config

import (
	"fmt"
	"strconv"
	"strings"
)

// cronField describes one of the five fields of a cron expression.
type cronField struct {
	name     string
	min, max int
	names    []string // names[i] stands for min+i
}

var cronFields = [5]cronField{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	// 7 is Sunday too, as in every cron.
	{name: "day of week", min: 0, max: 7, names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

var cronMacros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// CronToOnCalendar converts a 5-field cron expression (minute hour
// day-of-month month day-of-week, with *, lists, ranges, steps, month and
// day names, and the @daily family) to a systemd OnCalendar expression.
//
// One cron rule has no OnCalendar equivalent: when both day of month and
// day of week are restricted (neither starts with *), cron runs on days
// matching EITHER field, while OnCalendar requires BOTH. Such expressions
// are refused rather than translated into a different schedule; split them
// into two jobs, or write on_calendar yourself.
func CronToOnCalendar(expr string) (string, error) {
	expr = strings.TrimSpace(expr)
	if strings.HasPrefix(expr, "@") {
		m, ok := cronMacros[strings.ToLower(expr)]
		if !ok {
			return "", fmt.Errorf("%s has no calendar equivalent (known: @yearly, @monthly, @weekly, @daily, @hourly)", expr)
		}
		expr = m
	}
	parts := strings.Fields(expr)
	if len(parts) != 5 {
		return "", fmt.Errorf("cron expression has %d fields, want 5: minute hour day-of-month month day-of-week", len(parts))
	}
	var sets [5]uint64
	for i, p := range parts {
		s, err := parseCronField(p, cronFields[i])
		if err != nil {
			return "", err
		}
		sets[i] = s
	}
	// Sunday is 0 and 7: keep 0 only.
	if sets[4]&(1<<7) != 0 {
		sets[4] = sets[4]&^(1<<7) | 1
	}
	if !strings.HasPrefix(parts[2], "*") && !strings.HasPrefix(parts[4], "*") {
		return "", fmt.Errorf("day of month (%s) and day of week (%s) are both restricted: cron runs when EITHER matches, OnCalendar only when BOTH do; use two jobs, or write on_calendar", parts[2], parts[4])
	}

	var b strings.Builder
	if dow := sets[4]; dow != 0x7f {
		b.WriteString(weekdays(dow))
		b.WriteByte(' ')
	}
	b.WriteString("*-")
	b.WriteString(calendarList(sets[3], 1, 12))
	b.WriteByte('-')
	b.WriteString(calendarList(sets[2], 1, 31))
	b.WriteByte(' ')
	b.WriteString(calendarList(sets[1], 0, 23))
	b.WriteByte(':')
	b.WriteString(calendarList(sets[0], 0, 59))
	b.WriteString(":00")
	return b.String(), nil
}

// parseCronField returns the set of values of one field as a bit set.
func parseCronField(s string, f cronField) (uint64, error) {
	var set uint64
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			return 0, fmt.Errorf("%s %q: empty list item", f.name, s)
		}
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("%s %q: step %q is not a positive number", f.name, s, stepText)
			}
			step = n
		}
		var lo, hi int
		switch {
		case rng == "*":
			lo, hi = f.min, f.max
			if f.max == 7 {
				hi = 6 // */2 in day of week must not count Sunday twice
			}
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = cronValue(a, f); err != nil {
				return 0, fmt.Errorf("%s %q: %w", f.name, s, err)
			}
			if hi, err = cronValue(b, f); err != nil {
				return 0, fmt.Errorf("%s %q: %w", f.name, s, err)
			}
			if lo > hi {
				return 0, fmt.Errorf("%s %q: range %s goes backwards", f.name, s, rng)
			}
		default:
			v, err := cronValue(rng, f)
			if err != nil {
				return 0, fmt.Errorf("%s %q: %w", f.name, s, err)
			}
			lo, hi = v, v
			if hasStep {
				hi = f.max // a/n: from a to the end, every n
			}
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

func cronValue(s string, f cronField) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		if f.names != nil {
			return 0, fmt.Errorf("%q is not a number or a name (%s..%s)", s, f.names[0], f.names[len(f.names)-1])
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("%d is outside %d..%d", v, f.min, f.max)
	}
	return v, nil
}

// calendarList renders a set of values as OnCalendar writes them: * for
// all, a/n for a progression that runs to the end, a..b for runs of three
// or more, and commas between.
func calendarList(set uint64, lo, hi int) string {
	full := uint64(1)<<(hi+1) - uint64(1)<<lo
	if set == full {
		return "*"
	}
	var vals []int
	for v := lo; v <= hi; v++ {
		if set&(1<<v) != 0 {
			vals = append(vals, v)
		}
	}
	if len(vals) >= 3 {
		step := vals[1] - vals[0]
		progression := step > 1 && vals[len(vals)-1]+step > hi
		for i := 2; i < len(vals) && progression; i++ {
			progression = vals[i]-vals[i-1] == step
		}
		if progression {
			return fmt.Sprintf("%02d/%d", vals[0], step)
		}
	}
	var parts []string
	for i := 0; i < len(vals); {
		j := i
		for j+1 < len(vals) && vals[j+1] == vals[j]+1 {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, fmt.Sprintf("%02d..%02d", vals[i], vals[j]))
		case j == i+1:
			parts = append(parts, fmt.Sprintf("%02d", vals[i]), fmt.Sprintf("%02d", vals[j]))
		default:
			parts = append(parts, fmt.Sprintf("%02d", vals[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// weekdays renders a cron day-of-week set (0 = Sunday) in systemd's
// Monday-first order, so that ranges never wrap around the week.
func weekdays(set uint64) string {
	names := []string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
	// Monday-first: cron 1..6 are 0..5, cron 0 is 6.
	mf := (set >> 1 & 0x3f) | (set&1)<<6
	var parts []string
	for i := 0; i < 7; {
		if mf&(1<<i) == 0 {
			i++
			continue
		}
		j := i
		for j+1 < 7 && mf&(1<<(j+1)) != 0 {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, names[i]+".."+names[j])
		case j == i+1:
			parts = append(parts, names[i], names[j])
		default:
			parts = append(parts, names[i])
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
