package notify

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the notification series for /metrics. A nil *Metrics
// counts nothing.
type Metrics struct {
	total   *prometheus.CounterVec
	pending prometheus.Gauge
	failed  prometheus.Gauge
}

// NewMetrics makes the series; register Collectors on the server's registry.
func NewMetrics() *Metrics {
	return &Metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fraisier_notifications_total",
			Help: "Notification messages by outcome: queued, sent, retry (an attempt failed, tried again later), given_up, enqueue_failed (could not be written to the outbox).",
		}, []string{"outcome"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fraisier_notifications_pending",
			Help: "Notification messages waiting in the outbox to be sent or retried.",
		}),
		failed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fraisier_notifications_failed",
			Help: "Notification messages given up after their last attempt within the last 24 hours (fraisier notifications --failed lists them).",
		}),
	}
}

// Collectors are the series to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.total, m.pending, m.failed}
}

func (m *Metrics) outcome(o string) {
	if m != nil {
		m.total.WithLabelValues(o).Inc()
	}
}

func (m *Metrics) enqueued(n int) {
	if m != nil {
		m.total.WithLabelValues("queued").Add(float64(n))
	}
}

func (m *Metrics) counts(pending, givenUp int64) {
	if m != nil {
		m.pending.Set(float64(pending))
		m.failed.Set(float64(givenUp))
	}
}
