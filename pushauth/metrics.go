package pushauth

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus series.
type metrics struct {
	started    *prometheus.CounterVec // by result: sent, joined, refused
	closed     *prometheus.CounterVec // by state
	refusals   *prometheus.CounterVec // device requests refused, by code
	deliveries *prometheus.CounterVec // by provider and result
	enrolled   prometheus.Counter
	clones     prometheus.Counter // passkey answers whose sign counter did not grow
}

func newMetrics() *metrics {
	return &metrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_push_starts_total", Help: "Approvals asked for, by result: sent (a new challenge), joined (a pending one), refused (no device, rate limit, lock).",
		}, []string{"result"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_push_challenges_closed_total", Help: "Challenges closed, by final state.",
		}, []string{"state"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_push_device_refusals_total", Help: "Device requests refused, by protocol error code.",
		}, []string{"code"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_push_deliveries_total", Help: "Pushes sent to FCM and APNs, by provider and result (ok, stale_token, error, dropped).",
		}, []string{"provider", "result"}),
		enrolled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bridge_push_devices_enrolled_total", Help: "Devices enrolled.",
		}),
		clones: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bridge_push_clone_suspected_total", Help: "Passkey answers refused because the sign counter did not increase (possible cloned credential).",
		}),
	}
}

// register adds the metrics to r (nil: not exported).
func (m *metrics) register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.started, m.closed, m.refusals, m.deliveries, m.enrolled, m.clones} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}
