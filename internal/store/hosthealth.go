package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
	"unicode/utf8"
)

// HostHealthEvery is how often a node probes the health of its own
// host's targets; a record older than HostHealthStale (three probes
// missed) is not believed.
const (
	HostHealthEvery = 15 * time.Second
	HostHealthStale = 3 * HostHealthEvery
)

// HostHealthDetailCap bounds a recorded health detail, in bytes: a health
// command's output is the application's text.
const HostHealthDetailCap = 500

// HostHealth is the last health probe of one host's target (env@host), by
// the node that runs it.
type HostHealth struct {
	Target
	Node      string    `json:"node"`
	CheckedAt time.Time `json:"checked_at"`
	Healthy   bool      `json:"healthy"`
	// Detail says why it was unhealthy; the node scrubs it of the
	// configuration's secrets before it records it.
	Detail string `json:"detail"`
}

// RecordHostHealth replaces the health recorded for h's target. A zero
// CheckedAt is the store's clock; the detail is capped at
// HostHealthDetailCap bytes.
func (db *DB) RecordHostHealth(ctx context.Context, h HostHealth) error {
	if h.Fraise == "" || h.Environment == "" || h.Node == "" {
		return fmt.Errorf("record host health: fraise, environment and node are required")
	}
	at := db.nowMS()
	if !h.CheckedAt.IsZero() {
		at = h.CheckedAt.UnixMilli()
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := db.execTx(ctx, tx, `INSERT INTO tb_host_health (fraise, environment, node, checked_at, healthy, detail)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (fraise, environment) DO UPDATE SET node = excluded.node, checked_at = excluded.checked_at,
				healthy = excluded.healthy, detail = excluded.detail`,
			h.Fraise, h.Environment, h.Node, at, h.Healthy, capDetail(h.Detail, HostHealthDetailCap))
		return err
	})
	if err != nil {
		return fmt.Errorf("record health of %s: %w", h.Target, err)
	}
	return nil
}

// HostHealth lists the recorded health of every host target, by target.
func (db *DB) HostHealth(ctx context.Context) ([]HostHealth, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT fraise, environment, node, checked_at, healthy, detail
		FROM tb_host_health ORDER BY fraise, environment`)
	if err != nil {
		return nil, fmt.Errorf("read host health: %w", err)
	}
	var hs []HostHealth
	err = eachRow(rows, func() error {
		var (
			h  HostHealth
			at int64
		)
		err := rows.Scan(&h.Fraise, &h.Environment, &h.Node, &at, &h.Healthy, &h.Detail)
		h.CheckedAt = fromMS(at)
		hs = append(hs, h)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read host health: %w", err)
	}
	return hs, nil
}

// capDetail is s cut to at most limit bytes at a character boundary, with
// an ellipsis when cut.
func capDetail(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ellipsis = "…"
	cut := limit - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// The words a host's health is shown with.
const (
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
	HealthUnknown   = "unknown"
)

// HealthSeen is what a viewer may believe of a host's health at a moment:
// the recorded probe while it is fresh and its node alive, unknown
// otherwise (a stale record is never shown as healthy).
type HealthSeen struct {
	Word string // HealthHealthy, HealthUnhealthy or HealthUnknown
	// Detail says why it is unhealthy or unknown.
	Detail string
	// CheckedAt and By are the last probe's, stale or not (nil, "": none).
	CheckedAt *time.Time
	By        string
	// Age is how long before the moment the last probe answered.
	Age time.Duration
}

// SeeHostHealth judges rec, the last probe of a host's target (nil: none),
// at now: hasCheck says whether the target has a health check, nodeAlive
// whether the node that probes it is alive.
func SeeHostHealth(rec *HostHealth, hasCheck, nodeAlive bool, now time.Time) HealthSeen {
	switch {
	case !hasCheck:
		return HealthSeen{Word: HealthUnknown, Detail: "no health check configured"}
	case rec == nil:
		return HealthSeen{Word: HealthUnknown, Detail: "not checked yet"}
	}
	at := rec.CheckedAt.UTC()
	s := HealthSeen{Word: HealthUnknown, CheckedAt: &at, By: rec.Node, Age: max(now.Sub(rec.CheckedAt), 0)}
	switch {
	case !nodeAlive:
		s.Detail = fmt.Sprintf("last checked %s ago; node %s is not alive", Ago(s.Age), rec.Node)
	case s.Age > HostHealthStale:
		s.Detail = fmt.Sprintf("last checked %s ago", Ago(s.Age))
	case rec.Healthy:
		s.Word = HealthHealthy
	default:
		s.Word, s.Detail = HealthUnhealthy, rec.Detail
	}
	return s
}

// Summary says s in one line: "healthy, checked 8s ago by web-2",
// "unhealthy: why, checked …", "unknown: last checked 2m ago".
func (s HealthSeen) Summary() string {
	out := s.Word
	if s.Detail != "" {
		out += ": " + s.Detail
	}
	if s.Word != HealthUnknown {
		out += fmt.Sprintf(", checked %s ago by %s", Ago(s.Age), s.By)
	}
	return out
}

// Ago is d in whole seconds under two minutes, else whole minutes under
// two hours, else hours: "8s", "5m", "3h".
func Ago(d time.Duration) string {
	switch {
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmt.Sprintf("%dh", int(d.Hours()))
}
