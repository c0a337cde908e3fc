package webpush

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of one request to a push service (bridge_webpush_requests_total).
const (
	resultCreated     = "created"      // 201/200/202: the push service took it
	resultGone        = "gone"         // 404/410: the subscription is dead
	resultRefused     = "refused"      // other 4xx (400, 401, 403, 413...): not retried
	resultThrottled   = "throttled"    // 429: retried after Retry-After
	resultServerError = "server_error" // 5xx: retried
	resultNetwork     = "network"      // no answer (connection, timeout): retried
)

// Reasons a wake is not sent at all (bridge_webpush_dropped_total).
const (
	dropDismiss  = "dismiss"   // Web Push carries no dismiss (browsers require a notification for every push)
	dropBadToken = "bad_token" // the subscription does not parse or names a host no longer allowed
	dropOldKey   = "old_key"   // made with a VAPID key no longer kept: the app must resubscribe
)

type metrics struct {
	requests *prometheus.CounterVec
	dropped  *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_webpush_requests_total",
			Help: "Requests to Web Push services, by result: created, gone (404/410, subscription retired), refused (other 4xx), throttled (429), server_error (5xx), network.",
		}, []string{"result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_webpush_dropped_total",
			Help: "Wakes not sent over Web Push, by reason: dismiss (never sent over Web Push), bad_token, old_key (subscription made with a VAPID key no longer kept).",
		}, []string{"reason"}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	return errors.Join(r.Register(m.requests), r.Register(m.dropped))
}
