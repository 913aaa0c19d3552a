package agent

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// MetricsPath serves the agent's Prometheus metrics; it needs the full or
// the read-only token, like every other GET but /v1/health.
const MetricsPath = "/metrics"

// metricsProbeTimeout bounds the status probes one scrape makes.
const metricsProbeTimeout = 10 * time.Second

// agentMetrics are the agent's metrics, defined here and registered on the
// agent's own registry (no global state: two agents in one test process
// keep their own figures). Counters are updated where the event happens;
// workload states are probed at scrape time.
type agentMetrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	holdsArmed  prometheus.Counter
	holdsExpire prometheus.Counter
	holdsActive prometheus.Gauge
	lastBackup  *prometheus.GaugeVec
	handler     http.Handler
}

// leaseCounters count ownership lease renewals (Owners.RenewAll).
type leaseCounters struct{ ok, failed atomic.Int64 }

func (c *leaseCounters) observe(err error) {
	if err == nil {
		c.ok.Add(1)
	} else {
		c.failed.Add(1)
	}
}

func newAgentMetrics(s *Server) *agentMetrics {
	m := &agentMetrics{registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clusterguard_agent_http_requests_total",
		Help: "HTTP requests served, by route pattern and status code.",
	}, []string{"route", "code"})
	m.holdsArmed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "clusterguard_agent_quiesce_holds_total",
		Help: "Quiesces through the API that armed a hold (the agent thaws the workload when the hold passes).",
	})
	m.holdsExpire = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "clusterguard_agent_quiesce_holds_expired_total",
		Help: "Quiesce holds that passed without a thaw, so the agent thawed the workload itself.",
	})
	m.holdsActive = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "clusterguard_agent_quiesce_holds_active",
		Help: "Workloads quiesced through the API and not yet thawed.",
	})
	m.lastBackup = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "clusterguard_agent_last_backup_success_timestamp_seconds",
		Help: "Unix time of the last successful backup this agent served, per workload (absent until one succeeded since the agent started).",
	}, []string{"workload"})
	m.registry.MustRegister(m.requests, m.holdsArmed, m.holdsExpire, m.holdsActive, m.lastBackup,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{s: s}, &leaseCollector{s: s})
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return m
}

func (m *agentMetrics) request(route string, code int) {
	if route == "" {
		route = "unmatched" // before routing (body refused): keep the label set small
	}
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
}

func (m *agentMetrics) holdArmed()    { m.holdsArmed.Inc(); m.holdsActive.Inc() }
func (m *agentMetrics) holdReleased() { m.holdsActive.Dec() }
func (m *agentMetrics) holdExpired()  { m.holdsExpire.Inc(); m.holdsActive.Dec() }

func (m *agentMetrics) backupSucceeded(workload string, at time.Time) {
	m.lastBackup.WithLabelValues(workload).Set(float64(at.UnixNano()) / 1e9)
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	s.metrics.handler.ServeHTTP(w, r)
}

// stateCollector probes every workload at scrape time and reports one
// gauge per (workload, state) and the count per state.
type stateCollector struct{ s *Server }

var (
	stateDesc = prometheus.NewDesc("clusterguard_agent_workload_state",
		"1 for the state each workload is in on this node (probed at scrape time), 0 for the others.", []string{"workload", "state"}, nil)
	statesDesc = prometheus.NewDesc("clusterguard_agent_workloads",
		"Workloads on this node by state (probed at scrape time).", []string{"state"}, nil)
	renewOKDesc = prometheus.NewDesc("clusterguard_agent_ownership_lease_renewals_total",
		"Ownership lease renewals that succeeded.", nil, nil)
	renewFailDesc = prometheus.NewDesc("clusterguard_agent_ownership_lease_renewal_failures_total",
		"Ownership lease renewals that failed (retried until the lease expires).", nil, nil)
	heldDesc = prometheus.NewDesc("clusterguard_agent_ownership_leases_held",
		"Ownership leases this node holds and renews.", nil, nil)
)

var workloadStates = []string{api.StateActive, api.StateInactive, api.StateFailed, api.StateUnknown}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- stateDesc; ch <- statesDesc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), metricsProbeTimeout)
	defer cancel()
	states := make([]string, len(c.s.names))
	var wg sync.WaitGroup
	for i, name := range c.s.names {
		wg.Go(func() { st, _ := c.s.workloads[name].driver.Status(ctx); states[i] = st })
	}
	wg.Wait()
	count := map[string]int{}
	for i, name := range c.s.names {
		st := states[i]
		if st == "" {
			st = api.StateUnknown
		}
		count[st]++
		for _, known := range workloadStates {
			v := 0.0
			if known == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, name, known)
		}
	}
	for _, st := range workloadStates {
		ch <- prometheus.MustNewConstMetric(statesDesc, prometheus.GaugeValue, float64(count[st]), st)
	}
}

// leaseCollector reports the ownership lease counters of Owners.
type leaseCollector struct{ s *Server }

func (c *leaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- renewOKDesc
	ch <- renewFailDesc
	ch <- heldDesc
}

func (c *leaseCollector) Collect(ch chan<- prometheus.Metric) {
	o := c.s.owners
	ch <- prometheus.MustNewConstMetric(renewOKDesc, prometheus.CounterValue, float64(o.renewals.ok.Load()))
	ch <- prometheus.MustNewConstMetric(renewFailDesc, prometheus.CounterValue, float64(o.renewals.failed.Load()))
	o.mu.Lock()
	held := len(o.held)
	o.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.GaugeValue, float64(held))
}
