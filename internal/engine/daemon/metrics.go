package daemon

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
)

// metrics are the daemon's Prometheus metrics (namespace clusterguard).
type metrics struct {
	lastSuccess      *prometheus.GaugeVec // {group, workload}
	groupLastSuccess *prometheus.GaugeVec // {group}
	rpoMet           *prometheus.GaugeVec // {group, workload}
	runDuration      *prometheus.HistogramVec
	stepDuration     *prometheus.HistogramVec
	bytesRead        *prometheus.CounterVec
	bytesAdded       *prometheus.CounterVec
	stun             *prometheus.HistogramVec
	failures         *prometheus.CounterVec // {group, cause}
	lag              prometheus.Histogram
	leader           prometheus.Gauge
	leaderToken      prometheus.Gauge
	running          prometheus.Gauge
	verifyTime       *prometheus.GaugeVec // {repository}
	verifyOK         *prometheus.GaugeVec // {repository}

	mu  sync.Mutex
	rpo map[string]time.Duration // group -> RPO (0: none)
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "clusterguard"
	durations := []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200}
	m := &metrics{
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "backup_last_success_timestamp_seconds",
			Help: "Time of the newest recovery point of a workload."}, []string{"group", "workload"}),
		groupLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "group_last_success_timestamp_seconds",
			Help: "End time of the group's last run that captured every workload."}, []string{"group"}),
		rpoMet: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "backup_rpo_met",
			Help: "1 if the workload's newest recovery point is younger than its group's RPO, else 0 (groups with an RPO only)."}, []string{"group", "workload"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "backup_run_duration_seconds",
			Help: "Duration of scheduled backup runs.", Buckets: durations}, []string{"group", "status"}),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "backup_step_duration_seconds",
			Help: "Duration of workload backups (steps) of scheduled runs.", Buckets: durations}, []string{"group"}),
		bytesRead: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "backup_read_bytes_total",
			Help: "Bytes read by workload backups of scheduled runs."}, []string{"group", "workload"}),
		bytesAdded: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "backup_added_bytes_total",
			Help: "Bytes added to repositories by workload backups of scheduled runs."}, []string{"group", "workload"}),
		stun: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "backup_stun_seconds",
			Help: "Time workloads were quiesced or paused for their backup.", Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120}}, []string{"group"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "schedule_failures_total",
			Help: "Failures of scheduled work by cause: run_error, workload_missing, completion_window, interrupted, missed_slot, verify."}, []string{"group", "cause"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "schedule_lag_seconds",
			Help: "Delay from a slot's due time (with jitter) to its run's start.", Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600}}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "scheduler_leader",
			Help: "1 while this daemon holds the scheduler leadership."}),
		leaderToken: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "scheduler_leader_token",
			Help: "Fencing token of this daemon's last scheduler leadership."}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "schedule_runs_in_progress",
			Help: "Scheduled runs in progress on this daemon."}),
		verifyTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "verify_last_timestamp_seconds",
			Help: "Time of the last scheduled verification of a repository."}, []string{"repository"}),
		verifyOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "verify_ok",
			Help: "1 if the last scheduled verification of a repository found no damage."}, []string{"repository"}),
		rpo: map[string]time.Duration{},
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.lastSuccess, m.groupLastSuccess, m.rpoMet, m.runDuration, m.stepDuration,
		m.bytesRead, m.bytesAdded, m.stun, m.failures, m.lag, m.leader, m.leaderToken, m.running, m.verifyTime, m.verifyOK} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) setLeader(leader bool, token int64) {
	v := 0.0
	if leader {
		v = 1
	}
	m.leader.Set(v)
	if !leader {
		token = 0 // a follower holds no token
	}
	m.leaderToken.Set(float64(token))
}

func (m *metrics) failure(group, cause string) { m.failures.WithLabelValues(group, cause).Inc() }

func (m *metrics) observeRun(group, state string, d time.Duration, rep engine.RunReport) {
	m.runDuration.WithLabelValues(group, state).Observe(d.Seconds())
	for _, st := range rep.Steps {
		if st.StartedAt.IsZero() || st.FinishedAt.IsZero() || st.Node == "" {
			continue // skipped (verification) steps did no work
		}
		m.stepDuration.WithLabelValues(group).Observe(st.FinishedAt.Sub(st.StartedAt).Seconds())
		m.bytesRead.WithLabelValues(group, st.Workload).Add(float64(st.Bytes))
		m.bytesAdded.WithLabelValues(group, st.Workload).Add(float64(st.BytesAdded))
		if st.StunMS > 0 {
			m.stun.WithLabelValues(group).Observe(float64(st.StunMS) / 1000)
		}
	}
}

func (m *metrics) observeVerify(r VerifyResult) {
	m.verifyTime.WithLabelValues(r.Repository).Set(float64(r.At.UnixNano()) / 1e9)
	ok := 0.0
	if r.OK {
		ok = 1
	}
	m.verifyOK.WithLabelValues(r.Repository).Set(ok)
}

func (m *metrics) setRPO(group string, rpo time.Duration) {
	m.mu.Lock()
	m.rpo[group] = rpo
	m.mu.Unlock()
}

// updateRPOMet sets "RPO met" for a workload whose newest point is age old.
func (m *metrics) updateRPOMet(group, workload string, age time.Duration) {
	m.mu.Lock()
	rpo := m.rpo[group]
	m.mu.Unlock()
	if rpo <= 0 {
		return
	}
	met := 0.0
	if age <= rpo {
		met = 1
	}
	m.rpoMet.WithLabelValues(group, workload).Set(met)
}
