package catalog

import (
	"errors"
	"fmt"
)

// ValidateRestore checks a restore operation before it is stored.
func ValidateRestore(op RestoreOperation) error {
	var errs []error
	if op.ID == "" || op.Key == "" || op.Cluster == "" {
		errs = append(errs, errors.New("a restore operation needs an id, a key and a cluster"))
	}
	switch op.Status {
	case RestoreRunning, RestoreSucceeded, RestoreFailed:
	default:
		errs = append(errs, fmt.Errorf("restore status %q: use running, succeeded or failed", op.Status))
	}
	if op.StartedAt.IsZero() {
		errs = append(errs, errors.New("a restore operation needs its start time"))
	}
	return errors.Join(errs...)
}

// ValidateRestoreStep checks a restore step before it is stored.
func ValidateRestoreStep(s RestoreStep) error {
	var errs []error
	if s.OperationID == "" || s.Workload == "" {
		errs = append(errs, errors.New("a restore step needs its operation id and workload"))
	}
	if s.Seq < 1 {
		errs = append(errs, fmt.Errorf("restore step seq %d: sequence numbers start at 1", s.Seq))
	}
	switch s.Outcome {
	case StepSucceeded, StepFailed, StepSkipped, "running":
	default:
		errs = append(errs, fmt.Errorf("restore step outcome %q: use succeeded, failed, skipped or running", s.Outcome))
	}
	if s.BytesWritten < 0 || s.Epoch < 0 {
		errs = append(errs, errors.New("restore step counters must not be negative"))
	}
	return errors.Join(errs...)
}

// CheckRestoreTransition enforces the operation state model: running →
// succeeded | failed; failed → running (resume); succeeded is final.
func CheckRestoreTransition(from, to string) error {
	if from == RestoreSucceeded && to != RestoreSucceeded {
		return fmt.Errorf("restore operation already succeeded; it cannot become %s: %w", to, ErrConflict)
	}
	return nil
}
