package web

import (
	"fmt"
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

// statsCharts draws deploys per day, median and p95 duration and the
// change-failure rate of each environment in rows (the all-targets row
// aside).
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

// statsWindow is how far back the stats page looks.
const statsWindow = 30 * 24 * time.Hour
