package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fraiseql/fraisier/internal/queue"
	"github.com/fraiseql/fraisier/internal/store"
)

// metrics are the server's Prometheus series, on a registry of its own
// (no process-wide default registry: two servers in one test process must
// not share counters).
type metrics struct {
	reg         *prometheus.Registry
	webhooks    *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	intake      *prometheus.HistogramVec
	deployments *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
	reloads     *prometheus.CounterVec
}

func newMetrics(queueDepth func() float64, running func() float64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fraisier_webhooks_total",
			Help: "Webhook requests by forge and outcome (accepted, ignored, rejected, duplicate, replay, rate_limited, bad_request, queue_full, unavailable).",
		}, []string{"forge", "outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fraisier_webhooks_refused_total",
			Help: "Webhook requests refused before they were authenticated, by forge and reason (missing_signature, bad_signature, stale_timestamp, not_configured, content_type, too_large), recorded in the state database or not.",
		}, []string{"forge", "reason"}),
		intake: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fraisier_webhook_duration_seconds",
			Help:    "Time from receiving a webhook request to answering it, recording included.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}, []string{"forge"}),
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fraisier_deployments_total",
			Help: "Deployments run by the queue, by fraise, environment and result.",
		}, []string{"fraise", "environment", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fraisier_deployment_duration_seconds",
			Help:    "Duration of deployments run by the queue.",
			Buckets: []float64{.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200},
		}, []string{"fraise", "environment", "result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fraisier_last_success_timestamp_seconds",
			Help: "Unix time of the last successful deployment of each target.",
		}, []string{"fraise", "environment"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fraisier_config_reloads_total",
			Help: "Configuration reloads (SIGHUP) by result: applied, or refused (the new file did not load; the old configuration stays).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(m.webhooks, m.refusals, m.intake, m.deployments, m.duration, m.lastSuccess, m.reloads,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fraisier_queue_depth",
			Help: "Deployment requests waiting in the queue.",
		}, queueDepth),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fraisier_deployments_running",
			Help: "Deployments the queue is running now.",
		}, running),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) webhook(forge string, outcome store.Outcome, took time.Duration) {
	m.webhooks.WithLabelValues(forge, string(outcome)).Inc()
	m.intake.WithLabelValues(forge).Observe(took.Seconds())
}

func (m *metrics) refused(forge string, class refusalClass) {
	m.refusals.WithLabelValues(forge, string(class)).Inc()
}

func (m *metrics) finished(f queue.Finished) {
	m.deployments.WithLabelValues(f.Target.Fraise, f.Target.Environment, string(f.Result.Status)).Inc()
	m.duration.WithLabelValues(f.Target.Fraise, f.Target.Environment, string(f.Result.Status)).Observe(f.Duration.Seconds())
	if f.Result.Status == store.StatusSucceeded {
		m.lastSuccess.WithLabelValues(f.Target.Fraise, f.Target.Environment).SetToCurrentTime()
	}
}

// queueDepthFunc reads the queue's depth for a scrape, bounded in time so
// that a slow database cannot hold a scrape.
func queueDepthFunc(st Store) func() float64 {
	return func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		q, err := st.QueuedDeployments(ctx)
		if err != nil {
			return -1
		}
		return float64(len(q))
	}
}
