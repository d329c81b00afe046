package web

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// chart is one horizontal bar chart of a figure across environments,
// drawn as SVG by the stats page.
type chart struct {
	ID, Title string
	Bars      []bar
	// Height is the SVG's height for its bars.
	Height int
}

// bar is one environment's figure: Width is its length in SVG units, the
// largest figure spanning plotWidth.
type bar struct {
	Label, Text string
	Width       float64
	Y           int
}

// barHeight is the height of one bar and its gap, plotWidth the length
// of the longest bar, in SVG units.
const (
	barHeight = 28
	plotWidth = 300
)

// statsCharts draws deploys per day, median and p95 duration, the
// change-failure rate and the mean time to restore of each environment in
// rows (the all-targets row aside).
func statsCharts(rows []store.Stats) []chart {
	var targets []store.Stats
	for _, s := range rows {
		if s.Fraise != "" {
			targets = append(targets, s)
		}
	}
	dur := func(ms float64) string { return millis(ms) }
	figures := []struct {
		id, title string
		value     func(store.Stats) float64
		text      func(float64) string
	}{
		{"chart-per-day", "Deploys per day", func(s store.Stats) float64 { return s.DeploysPerDay }, func(v float64) string { return fmt.Sprintf("%.1f", v) }},
		{"chart-median", "Median duration", func(s store.Stats) float64 { return s.MedianDurationMS }, dur},
		{"chart-p95", "p95 duration", func(s store.Stats) float64 { return s.P95DurationMS }, dur},
		{"chart-cfr", "Change-failure rate", func(s store.Stats) float64 { return s.ChangeFailureRate }, func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }},
		{"chart-restore", "Time to restore", func(s store.Stats) float64 { return s.MeanTimeToRestore }, dur},
	}
	var out []chart
	for _, fig := range figures {
		c := chart{ID: fig.id, Title: fig.title, Height: max(1, len(targets)) * barHeight}
		top := 0.0
		for _, s := range targets {
			top = max(top, fig.value(s))
		}
		for i, s := range targets {
			v := fig.value(s)
			w := 0.0
			if top > 0 {
				w = plotWidth * v / top
			}
			c.Bars = append(c.Bars, bar{Label: s.Target.String(), Text: fig.text(v), Width: w, Y: i * barHeight})
		}
		out = append(out, c)
	}
	return out
}

// statsDays is how many UTC days the stats page shows, today included.
const statsDays = 30

// dayChart is one series of the per-day charts: deploys per day stacked
// by outcome and, when Full, a table of the figures and, if asked, the
// median and p95 duration per day. The SVG paths are built here, so that the
// template writes a few attributes rather than a shape per day.
type dayChart struct {
	ID, Title string
	// Link shows this series alone; empty when it is already alone.
	Link   string
	Full   bool
	Height int
	// OK, Bad and Other are the path data of the bars' segments:
	// succeeded; failed, rolled back or interrupted; skipped or
	// superseded.
	OK, Bad, Other string
	YTicks, XTicks []tick
	Desc           string
	Dur            *durChart
	Days           []dayFigures
}

// durChart draws the median and p95 duration per day.
type durChart struct {
	Median, P95 string // path data, one run of lines per run of days with deployments
	YTicks      []tick
	Desc        string
}

// tick is an axis label; X and Y are rounded to a tenth, so that the
// template writes them short.
type tick struct {
	Label  string
	X, Y   float64
	Anchor string // text-anchor: where the label hangs from X
}

func newTick(label string, x, y float64, anchor string) tick {
	return tick{Label: label, X: math.Round(x*10) / 10, Y: math.Round(y*10) / 10, Anchor: anchor}
}

// dayFigures is one day of a series, as the table shows it.
type dayFigures struct {
	Day             time.Time
	OK, Bad, Other  int64
	MedianMS, P95MS float64
	Measured        bool
}

// The per-day charts' geometry, in SVG units: the plot spans plotLeft to
// chartWidth, and plotTop to the chart's height less plotBottom.
const (
	chartWidth = 600
	plotLeft   = 64
	plotTop    = 16
	plotBottom = 28
	slotWidth  = float64(chartWidth-plotLeft) / statsDays
)

// dayCharts groups rows (store.DailyStats, one target after another) into
// one chart per target, the first (all together, or the only target) in
// full, and the others in full only when full says so; durations draws
// the full ones' durations.
func dayCharts(rows []store.DayStats, full, durations bool, link func(store.Target) string) []dayChart {
	var out []dayChart
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].Target == rows[i].Target {
			j++
		}
		t := rows[i].Target
		c := dayChart{ID: "daily-" + strconv.Itoa(len(out)), Title: "All together", Full: full || len(out) == 0}
		if t.Fraise != "" {
			c.Title = t.String()
		}
		if l := link(t); l != "" && len(rows) > j-i {
			c.Link = l
		}
		c.draw(rows[i:j], durations)
		out = append(out, c)
		i = j
	}
	return out
}

// draw fills the chart from one target's days.
func (c *dayChart) draw(days []store.DayStats, durations bool) {
	c.Height = 140
	if c.Full {
		c.Height = 200
	}
	var top, ok, bad, other, busiest int64
	var busiestDay time.Time
	for _, d := range days {
		f := figuresOf(d)
		c.Days = append(c.Days, f)
		ok, bad, other = ok+f.OK, bad+f.Bad, other+f.Other
		if d.Total > busiest {
			busiest, busiestDay = d.Total, d.Day
		}
		top = max(top, d.Total)
	}
	scale, ticks := niceScale(float64(top), c.Height, func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) })
	c.YTicks = ticks
	var pOK, pBad, pOther strings.Builder
	base := float64(c.Height - plotBottom)
	for i, f := range c.Days {
		x := plotLeft + float64(i)*slotWidth + 2
		y := base
		for _, seg := range []struct {
			b *strings.Builder
			n int64
		}{{&pOK, f.OK}, {&pBad, f.Bad}, {&pOther, f.Other}} {
			if seg.n == 0 {
				continue
			}
			h := float64(seg.n) * scale
			fmt.Fprintf(seg.b, "M%.1f %.1fh%.1fv%.1fh%.1fz", x, y, slotWidth-4, -h, -(slotWidth - 4))
			y -= h
		}
	}
	c.OK, c.Bad, c.Other = pOK.String(), pBad.String(), pOther.String()
	c.XTicks = dayTicks(c.Days, c.Height)
	if len(days) == 0 {
		return
	}
	from, to := days[0].Day.Format(dayFormat), days[len(days)-1].Day.Format(dayFormat)
	c.Desc = fmt.Sprintf("Deploys per day from %s to %s: %d in all, %d succeeded, %d failed, rolled back or interrupted, %d skipped or superseded.",
		from, to, ok+bad+other, ok, bad, other)
	if busiest > 0 {
		c.Desc += fmt.Sprintf(" The most in a day: %d, on %s.", busiest, busiestDay.Format(dayFormat))
	}
	if c.Full && durations {
		c.Dur = durationsOf(c.Days, c.Height)
	}
}

const dayFormat = "2006-01-02"

func figuresOf(d store.DayStats) dayFigures {
	b := d.ByStatus
	f := dayFigures{Day: d.Day, OK: b[store.StatusSucceeded],
		Bad:   b[store.StatusFailed] + b[store.StatusRolledBack] + b[store.StatusRollbackFailed] + b[store.StatusInterrupted],
		Other: b[store.StatusSkipped] + b[store.StatusSuperseded], MedianMS: d.MedianDurationMS, P95MS: d.P95DurationMS}
	f.Measured = f.OK+f.Bad > 0
	return f
}

// durationsOf draws the median and p95 lines of days.
func durationsOf(days []dayFigures, height int) *durChart {
	var top, lo, hi float64
	n := 0
	for _, f := range days {
		if !f.Measured {
			continue
		}
		top = max(top, f.P95MS)
		if n == 0 || f.MedianMS < lo {
			lo = f.MedianMS
		}
		hi = max(hi, f.MedianMS)
		n++
	}
	scale, ticks := niceScale(top, height, func(v float64) string { return millis(v) })
	d := &durChart{YTicks: ticks}
	base := float64(height - plotBottom)
	line := func(value func(dayFigures) float64) string {
		var b strings.Builder
		prev := false
		for i, f := range days {
			if !f.Measured {
				prev = false
				continue
			}
			x, y := plotLeft+(float64(i)+0.5)*slotWidth, base-value(f)*scale
			// A lone day is a short dash, so that it shows.
			if prev {
				fmt.Fprintf(&b, "L%.1f %.1f", x, y)
			} else {
				fmt.Fprintf(&b, "M%.1f %.1fh8", x-4, y)
			}
			prev = true
		}
		return b.String()
	}
	d.Median = line(func(f dayFigures) float64 { return f.MedianMS })
	d.P95 = line(func(f dayFigures) float64 { return f.P95MS })
	if n == 0 {
		d.Desc = "No deployment was measured in these days."
	} else {
		days := "days"
		if n == 1 {
			days = "day"
		}
		d.Desc = fmt.Sprintf("Median duration per day between %s and %s over the %d %s with deployments; p95 up to %s.",
			millis(lo), millis(hi), n, days, millis(top))
	}
	return d
}

// niceScale maps 0..top onto the plot's height: SVG units per unit, and
// ticks at 0, half and the top of a rounded-up scale.
func niceScale(top float64, height int, label func(float64) string) (float64, []tick) {
	span := float64(height - plotTop - plotBottom)
	if top <= 0 {
		return 0, []tick{newTick(label(0), plotLeft-6, float64(height-plotBottom), "end")}
	}
	nice := niceCeil(top)
	var ticks []tick
	for _, v := range []float64{0, nice / 2, nice} {
		ticks = append(ticks, newTick(label(v), plotLeft-6, float64(height-plotBottom)-v*span/nice, "end"))
	}
	return span / nice, ticks
}

// niceCeil rounds v up to a round figure whose half is whole: an even
// number up to 10, else 1, 1.2, 1.6, 2, 3, 4, 6 or 8 times a power of
// ten, which keeps the tallest bar above two thirds of the scale.
func niceCeil(v float64) float64 {
	if v <= 10 {
		return max(2, 2*math.Ceil(v/2))
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.6, 2, 3, 4, 6, 8} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// dayTicks labels the first day, every seventh after it, and the last.
func dayTicks(days []dayFigures, height int) []tick {
	var ticks []tick
	for i, f := range days {
		if i%7 == 0 || i == len(days)-1 {
			if i == len(days)-1 && i%7 != 0 && i%7 < 3 {
				ticks = ticks[:len(ticks)-1] // too close to the last label
			}
			tk := newTick(f.Day.Format("Jan 2"), plotLeft+(float64(i)+0.5)*slotWidth, float64(height-8), "middle")
			if i == len(days)-1 {
				tk.X, tk.Anchor = chartWidth, "end"
			}
			ticks = append(ticks, tk)
		}
	}
	return ticks
}
