package catalog

import "time"

// Catch-up policies of a schedule after the daemon was down over a slot.
const (
	CatchUpLatest = "latest" // run the latest missed slot once (never a burst)
	CatchUpSkip   = "skip"   // record missed slots and wait for the next one
)

// Schedule runs backups of one protection group by itself, through the
// engine daemon. Exactly one of Cron and Interval is set.
type Schedule struct {
	Name             string
	Group            string
	Cron             string        // five-field cron expression (robfig/cron syntax); "" with Interval
	TimeZone         string        // IANA zone the cron expression is read in; "" means UTC
	Interval         time.Duration // plain interval between slots; 0 with Cron
	StartWindow      time.Duration // a slot that cannot start within it is missed; 0 means the default
	CompletionWindow time.Duration // a run still going after it is cancelled; 0 means no bound
	Jitter           time.Duration // upper bound of the delay added to each slot
	Paused           bool
	CatchUp          string        // CatchUpLatest or CatchUpSkip
	Tags             []string      // stored on every recovery point the schedule makes (e.g. "daily")
	Retention        Retention     // kept among this schedule's own recovery points (by Tags); zero keeps all
	VerifyEvery      time.Duration // scheduled verification of the group's recovery points; 0 means none
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Slot states. A slot is claimed once, atomically, by the leading daemon.
const (
	SlotRunning   = "running"
	SlotSucceeded = "succeeded"
	SlotPartial   = "partial"
	SlotFailed    = "failed"
	SlotMissed    = "missed"
)

// ScheduleSlot is one due time of a schedule and what became of it. The
// pair (Schedule, Slot) is unique: a slot runs at most once, across
// daemons and failovers.
type ScheduleSlot struct {
	Schedule   string
	Slot       time.Time // nominal due time (before jitter), UTC
	State      string    // Slot* constants
	Daemon     string    // daemon instance that claimed (or last took over) the slot
	Token      int64     // leadership fencing token of that daemon
	RunID      string    // the backup run, once started
	Reason     string    // why it was missed or failed
	ClaimedAt  time.Time
	StartedAt  time.Time // zero until the run started
	FinishedAt time.Time // zero while running
}

// RoleScheduler is the leadership role whose holder evaluates schedules and
// claims their slots; ClaimSlot and UpdateSlot are fenced by its token.
const RoleScheduler = "scheduler"

// Leadership is a named role (e.g. "scheduler") held by one daemon at a time.
// Token increases by one whenever the role changes hands and never goes back:
// every write a leader makes carries it, and the catalog refuses writes with
// a token that is no longer current (fencing).
type Leadership struct {
	Role      string
	Holder    string // daemon instance id
	Token     int64
	ExpiresAt time.Time
}

// Daemon is an engine daemon instance as last reported by itself.
type Daemon struct {
	ID        string // unique per process (host/pid/start)
	Host      string
	Version   string
	Listen    string // address of /health and /metrics
	StartedAt time.Time
	SeenAt    time.Time // last heartbeat
}

// NodeRegistration is what an agent announced about itself to a daemon.
type NodeRegistration struct {
	Cluster   string // the cluster the agent says it belongs to ("" if it does not know)
	Node      string
	Endpoint  string
	VolumeID  string
	Version   string
	Workloads []string
	SeenAt    time.Time
}
