package engine

import (
	"strings"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
)

// abandonedPrefix starts the error RecoverAbandoned records on a run whose
// engine died mid-run (abandoned.go).
const abandonedPrefix = "abandoned by "

// RunAbandoned reports whether run was marked failed by RecoverAbandoned:
// its engine stopped mid-run, so the run was interrupted rather than failed
// on its own (the daemon retries such a scheduled run's slot).
func RunAbandoned(run catalog.Run) bool {
	return run.Status == catalog.RunFailed && strings.HasPrefix(run.Error, abandonedPrefix)
}
