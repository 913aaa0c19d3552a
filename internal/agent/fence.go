package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// CoordinatorMarkerFile, relative to the shared volume, names the node that
// holds the coordinator role and its fencing epoch (E3).
var CoordinatorMarkerFile = filepath.Join(MetadataDir, "coordinator.json")

// highestEpochFile, in the agent's state_dir, keeps the highest epoch this
// agent has seen across restarts.
const highestEpochFile = "highest-epoch.json"

// CodeStaleEpoch is the api.Error code of a refused epoch.
const CodeStaleEpoch = "stale_epoch"

// MaxEpochStep is how far above the highest epoch seen (by this agent or on
// the volume's marker) a claim may jump. The engine steps by one; without a
// bound, one request claiming 2^63-1 would be saved in state and on the
// volume and refuse every later claim for good.
const MaxEpochStep = 1_000_000

type coordinatorMarker struct {
	Cluster   string    `json:"cluster"`
	Node      string    `json:"node"`
	Epoch     int64     `json:"epoch"`
	Owner     string    `json:"owner,omitempty"`
	ClaimedAt time.Time `json:"claimed_at"`
}

// StaleEpochError refuses work carrying an epoch that is no longer (or not)
// this node's coordinator epoch.
type StaleEpochError struct {
	Node   string
	Epoch  int64
	Reason string
}

func (e *StaleEpochError) Error() string {
	return fmt.Sprintf("node %s refuses epoch %d: %s", e.Node, e.Epoch, e.Reason)
}

// Fence guards the shared volume: only the node holding the newest epoch may
// read or write it for a backup or restore. Every such operation calls Check
// with its epoch right before it touches the volume.
type Fence struct {
	node, volume, stateDir string
	now                    func() time.Time

	mu        sync.Mutex
	highest   int64 // highest epoch ever seen (persisted)
	current   int64 // epoch this node holds; 0 when not coordinator
	claimedAt time.Time
}

// NewFence loads the highest epoch this agent has seen.
func NewFence(node, sharedVolume, stateDir string, now func() time.Time) (*Fence, error) {
	if now == nil {
		now = time.Now
	}
	f := &Fence{node: node, volume: sharedVolume, stateDir: stateDir, now: now}
	data, err := os.ReadFile(filepath.Join(stateDir, highestEpochFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", highestEpochFile, err)
	default:
		var st struct {
			Highest int64 `json:"highest"`
		}
		if err := json.Unmarshal(data, &st); err != nil {
			return nil, fmt.Errorf("%s in %s is damaged (%w); remove it only if no other node can be coordinator", highestEpochFile, stateDir, err)
		}
		f.highest = st.Highest
	}
	return f, nil
}

func (f *Fence) readMarker() (coordinatorMarker, error) {
	var m coordinatorMarker
	data, err := os.ReadFile(filepath.Join(f.volume, CoordinatorMarkerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("read the coordinator marker on the shared volume: %w", err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("the coordinator marker %s is damaged: %w", CoordinatorMarkerFile, err)
	}
	return m, nil
}

// Claim makes this node the coordinator with c.Epoch, unless the epoch is
// lower than the highest this agent has seen or than the marker's, or the
// marker gives the same epoch to another node. Re-claiming the epoch this
// node holds is idempotent.
func (f *Fence) Claim(c api.CoordinatorClaim) (api.CoordinatorState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.readMarker()
	if err != nil {
		return f.stateLocked(m), err
	}
	stale := func(reason string) (api.CoordinatorState, error) {
		return f.stateLocked(m), &StaleEpochError{Node: f.node, Epoch: c.Epoch, Reason: reason}
	}
	switch {
	case c.Epoch <= 0:
		return stale("epochs start at 1")
	case c.Epoch == f.current && m.Epoch == c.Epoch && m.Node == f.node:
		return f.stateLocked(m), nil
	case c.Epoch <= f.highest:
		return stale(fmt.Sprintf("this agent has already seen epoch %d", f.highest))
	case c.Epoch < m.Epoch:
		return stale(fmt.Sprintf("node %s holds epoch %d according to the shared volume's marker", m.Node, m.Epoch))
	case c.Epoch == m.Epoch && m.Node != f.node:
		return stale(fmt.Sprintf("node %s already holds epoch %d", m.Node, m.Epoch))
	case c.Epoch-max(f.highest, m.Epoch) > MaxEpochStep:
		return stale(fmt.Sprintf("it is more than %d above the highest epoch seen (%d); an engine steps epochs by one, so this claim is refused as a likely attempt to poison the fence", MaxEpochStep, max(f.highest, m.Epoch)))
	}
	// Persist what we have seen before acting on it, so a restart can never
	// accept this epoch (or a lower one) again.
	if err := writeFileAtomic(filepath.Join(f.stateDir, highestEpochFile), []byte(fmt.Sprintf("{\"highest\":%d}\n", c.Epoch)), 0o600); err != nil {
		return f.stateLocked(m), fmt.Errorf("record epoch %d: %w", c.Epoch, err)
	}
	f.highest = c.Epoch
	m = coordinatorMarker{Cluster: c.Cluster, Node: f.node, Epoch: c.Epoch, Owner: c.Owner, ClaimedAt: f.now().UTC()}
	data, _ := json.Marshal(m)
	if err := os.MkdirAll(filepath.Join(f.volume, MetadataDir), 0o755); err != nil {
		return f.stateLocked(m), err
	}
	if err := writeFileAtomic(filepath.Join(f.volume, CoordinatorMarkerFile), append(data, '\n'), 0o644); err != nil {
		return f.stateLocked(m), fmt.Errorf("write the coordinator marker on the shared volume: %w", err)
	}
	f.current, f.claimedAt = c.Epoch, m.ClaimedAt
	return f.stateLocked(m), nil
}

// Check allows an operation on the shared volume only with the epoch this
// node holds, and only while no other node has claimed a newer one.
func (f *Fence) Check(epoch int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current == 0 || epoch != f.current {
		return &StaleEpochError{Node: f.node, Epoch: epoch, Reason: fmt.Sprintf("this node is not the coordinator with that epoch (it holds %d, highest seen %d)", f.current, f.highest)}
	}
	m, err := f.readMarker()
	if err != nil {
		return err
	}
	if m.Epoch > epoch || (m.Epoch == epoch && m.Node != f.node) {
		f.current = 0
		return &StaleEpochError{Node: f.node, Epoch: epoch, Reason: fmt.Sprintf("node %s has since claimed epoch %d", m.Node, m.Epoch)}
	}
	return nil
}

// State reports the coordinator state.
func (f *Fence) State() (api.CoordinatorState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.readMarker()
	return f.stateLocked(m), err
}

func (f *Fence) stateLocked(m coordinatorMarker) api.CoordinatorState {
	return api.CoordinatorState{Node: f.node, Epoch: f.current, HighestSeen: f.highest, MarkerNode: m.Node, MarkerEpoch: m.Epoch, ClaimedAt: f.claimedAt}
}
