package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// Bounds of a quiesce through the API (POST /v1/workloads/{name}/quiesce).
const (
	// DefaultQuiesceHold is how long a quiesced workload stays frozen
	// without a thaw when the request gives no max_hold_ms.
	DefaultQuiesceHold = DefaultStunTimeout
	// MaxQuiesceHold is the longest hold a request may ask for.
	MaxQuiesceHold = time.Hour
)

// thawTimer thaws a workload quiesced through the API once its hold passes.
type thawTimer struct {
	timer    *time.Timer
	deadline time.Time
}

// quiesceHold reads the optional body of a quiesce: how long the workload
// may stay frozen before the agent thaws it itself.
func (s *Server) quiesceHold(w http.ResponseWriter, r *http.Request, wl *workload, action string) (time.Duration, bool) {
	if action != ActionQuiesce {
		return 0, true
	}
	var req api.QuiesceRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<12)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		s.writeError(w, http.StatusBadRequest, CodeBadRequest, "the body of a quiesce is empty or a JSON object {\"max_hold_ms\": N}: "+err.Error())
		return 0, false
	}
	hold := time.Duration(req.MaxHoldMS) * time.Millisecond
	switch {
	case req.MaxHoldMS == 0:
		return DefaultQuiesceHold, true
	case req.MaxHoldMS < 0 || hold > MaxQuiesceHold:
		s.writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("max_hold_ms = %d for %s: give 1 to %d (%s); the agent thaws the workload when it passes", req.MaxHoldMS, wl.cfg.Name, MaxQuiesceHold.Milliseconds(), MaxQuiesceHold))
		return 0, false
	}
	return hold, true
}

// afterAction runs with wl.actionMu held, after the driver ran action. A
// successful quiesce arms a timer that thaws the workload when hold passes
// (like a backup's stun timeout), so a caller that dies or forgets cannot
// leave it frozen; a failed quiesce is thawed at once, since it may have
// half-frozen the workload. A thaw or stop disarms the timer.
func (s *Server) afterAction(wl *workload, action string, hold time.Duration, err error) *time.Time {
	switch action {
	case ActionQuiesce:
		s.disarmHold(wl)
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), s.actionTimeout(wl))
			defer cancel()
			if terr := wl.driver.Thaw(ctx); terr != nil {
				s.logger.Warn("thaw after a failed quiesce failed", "workload", wl.cfg.Name, "error", terr)
			}
			return nil
		}
		h := &thawTimer{deadline: s.now().Add(hold).UTC()}
		h.timer = time.AfterFunc(hold, func() { s.thawAfterHold(wl, h) })
		wl.hold = h
		s.metrics.holdArmed()
		return &h.deadline
	case ActionThaw, ActionStop:
		s.disarmHold(wl)
	}
	return nil
}

func (s *Server) disarmHold(wl *workload) {
	if wl.hold != nil {
		wl.hold.timer.Stop()
		wl.hold = nil
		s.metrics.holdReleased()
	}
}

// thawAfterHold thaws wl unless the hold h was disarmed or replaced since.
func (s *Server) thawAfterHold(wl *workload, h *thawTimer) {
	wl.actionMu.Lock()
	defer wl.actionMu.Unlock()
	if wl.hold != h {
		return
	}
	wl.hold = nil
	s.metrics.holdExpired()
	s.thawHeld(wl, "the quiesce hold passed without a thaw")
}

func (s *Server) thawHeld(wl *workload, why string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.actionTimeout(wl))
	defer cancel()
	if err := wl.driver.Thaw(ctx); err != nil {
		s.driverErrors.Add(1)
		s.logger.Error("could not thaw a held workload; thaw it by hand", "workload", wl.cfg.Name, "reason", why, "error", err)
		return
	}
	s.logger.Warn("workload thawed by the agent", "workload", wl.cfg.Name, "reason", why)
}

// ReleaseHolds thaws every workload still held by a quiesce through the
// API; Run calls it when the agent stops, so it never leaves one frozen.
func (s *Server) ReleaseHolds() {
	for _, name := range s.names {
		wl := s.workloads[name]
		wl.actionMu.Lock()
		if wl.hold != nil {
			s.disarmHold(wl)
			s.thawHeld(wl, "the agent is stopping")
		}
		wl.actionMu.Unlock()
	}
}
