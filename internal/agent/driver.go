package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/exec"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/postgresql"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/qemu"
)

// Driver probes and operates one workload on this node. A driver is built per
// workload from its config. Actions are expected to be idempotent (starting a
// running workload succeeds) and synchronous: when Start returns nil, Status
// reports active; when Stop returns nil, inactive. Drivers need not be safe for
// concurrent actions: the agent runs one action per workload at a time, though
// Status may run alongside an action.
type Driver interface {
	// Status returns one of the api.State* constants. With a non-nil error the
	// state is api.StateFailed (the workload reports itself broken) or
	// api.StateUnknown (the probe could not tell).
	Status(ctx context.Context) (state string, err error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Quiesce(ctx context.Context) error
	Thaw(ctx context.Context) error
}

// Pauser is a driver that can pause and resume its workload for a
// crash-consistent copy (M6). Drivers without it are quiesced instead.
type Pauser interface {
	CanPause() bool
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
}

// CopyExcluder is a driver whose workload keeps files on the shared volume
// that must not be in a point-in-time copy: they describe the running
// process, not its data (e.g. PostgreSQL's postmaster.pid), and restored
// they would mislead the next start.
type CopyExcluder interface {
	ExcludeFromCopy() []string // absolute paths
}

// WorkloadStateDir is the node-local directory a workload's driver may keep state in.
func WorkloadStateDir(stateDir, workload string) string {
	return filepath.Join(stateDir, "workloads", workload)
}

// NewDriver builds the driver a workload's config asks for.
func NewDriver(cfg *Config, w WorkloadConfig, logger *slog.Logger) (Driver, error) {
	switch w.Driver {
	case "exec":
		if w.Exec == nil {
			return nil, fmt.Errorf("workload %q: exec driver without exec settings", w.Name)
		}
		return exec.New(exec.Config{
			Workload:     w.Name,
			Node:         cfg.Node,
			SharedVolume: cfg.SharedVolume,
			Paths:        w.AbsPaths,
			StateDir:     WorkloadStateDir(cfg.StateDir, w.Name),
			Commands:     w.Exec.Commands,
			Timeout:      w.Exec.Timeout,
			Timeouts:     w.Exec.Timeouts,
			Env:          w.Exec.Env,
			User:         w.Exec.User,
			Logger:       logger,
		})
	case "postgresql":
		if w.Postgres == nil || len(w.AbsPaths) == 0 {
			return nil, fmt.Errorf("workload %q: postgresql driver without postgresql settings or a data path", w.Name)
		}
		return postgresql.New(postgresql.Config{
			Workload:        w.Name,
			Node:            cfg.Node,
			DataDir:         w.AbsPaths[0],
			BinDir:          w.Postgres.BinDir,
			Port:            w.Postgres.Port,
			ListenAddresses: w.Postgres.ListenAddresses,
			User:            w.Postgres.User,
			DatabaseUser:    w.Postgres.DatabaseUser,
			BackupMethod:    w.Postgres.BackupMethod,
			StateDir:        WorkloadStateDir(cfg.StateDir, w.Name),
			Timeout:         w.Postgres.Timeout,
			Logger:          logger,
		})
	case "qemu":
		if w.QEMU == nil || len(w.AbsPaths) == 0 {
			return nil, fmt.Errorf("workload %q: qemu driver without qemu settings or a path", w.Name)
		}
		return qemu.New(qemu.Config{
			Workload:        w.Name,
			Dir:             w.AbsPaths[0],
			Disks:           w.QEMU.Disks,
			Binary:          w.QEMU.Binary,
			Memory:          w.QEMU.Memory,
			CPUs:            w.QEMU.CPUs,
			Accel:           w.QEMU.Accel,
			ExtraArgs:       w.QEMU.ExtraArgs,
			StateDir:        WorkloadStateDir(cfg.StateDir, w.Name),
			ShutdownTimeout: w.QEMU.ShutdownTimeout,
			Timeout:         w.QEMU.Timeout,
			User:            w.QEMU.User,
			Logger:          logger,
		})
	default:
		return nil, fmt.Errorf("workload %q: unknown driver %q", w.Name, w.Driver)
	}
}
