package radius

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests    *prometheus.CounterVec   // by port and code
	responses   *prometheus.CounterVec   // by client and code
	decisions   *prometheus.CounterVec   // by client and accept/reject/challenge
	dropped     *prometheus.CounterVec   // by reason
	retransmits *prometheus.CounterVec   // absorbed (while pending) or resent
	failmode    *prometheus.CounterVec   // by client and failmode
	lockouts    *prometheus.CounterVec   // by client and limit (source, user)
	accounting  *prometheus.CounterVec   // by client and status type
	duration    *prometheus.HistogramVec // request in to answer out, by client and code
	inProgress  prometheus.Gauge
	cached      prometheus.Gauge
	rcvbuf      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_radius_requests_total",
			Help: "RADIUS packets received from known clients, by port and code."}, []string{"port", "code"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_radius_responses_total",
			Help: "RADIUS responses sent (retransmitted answers not included), by client and code."}, []string{"client", "code"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_radius_decisions_total",
			Help: "Access-Request decisions, by client and result (accept, reject, challenge)."}, []string{"client", "result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_radius_dropped_total",
			Help: "RADIUS packets dropped unanswered, by reason (unknown_client, malformed, bad_authenticator, missing_message_authenticator, overloaded, ...)."}, []string{"reason"}),
		retransmits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_radius_retransmits_total",
			Help: "Retransmitted requests: absorbed while the first copy was being handled, or answered again from the cache."}, []string{"action"}),
		lockouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_radius_first_factor_lockouts_total",
			Help: "Logins rejected without asking the directory because the first-factor limits were reached, by client and limit (source, user)."}, []string{"client", "limit"}),
		failmode: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_radius_second_factor_unavailable_total",
			Help: "Logins decided by the client's failmode because the push engine or the store failed."}, []string{"client", "failmode"}),
		accounting: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_radius_accounting_total",
			Help: "Accounting-Requests acknowledged, by client and Acct-Status-Type."}, []string{"client", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bridge_radius_request_duration_seconds",
			Help:    "Time from a request's arrival to its answer (held requests included), by client and response code.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18)}, []string{"client", "code"}),
		inProgress: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bridge_radius_requests_in_progress",
			Help: "RADIUS requests being handled, held ones included."}),
		cached: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bridge_radius_answer_cache_entries",
			Help: "Requests remembered to recognise retransmissions."}),
		rcvbuf: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bridge_radius_receive_buffer_bytes",
			Help: "The receive buffer the kernel gave each RADIUS socket."}, []string{"socket"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.responses, m.decisions, m.dropped, m.retransmits, m.failmode, m.lockouts, m.accounting, m.duration, m.inProgress, m.cached, m.rcvbuf)
	}
	return m
}
