package agent

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// CodeWrongRecoveryPoint: the recovery point a restore names was not taken
// of that workload (or not in the request's cluster).
const CodeWrongRecoveryPoint = "wrong_recovery_point"

// checkRestoreSource refuses a recovery point that does not protect
// workload: one repository holds every workload's and every cluster's
// recovery points, and a token holder must not be able to write one
// workload's (or cluster's) data into another, in place or file by file.
// A workload's own snapshot carries its name; a node view lists the
// workloads it was taken for. cluster, when the request names one, must
// be the snapshot's.
func (s *Server) checkRestoreSource(snap repository.Snapshot, workload, cluster string) error {
	of := snap.Workload
	ok := of == workload
	if of == "" {
		listed := snap.Labels[api.LabelWorkloads]
		ok = listed != "" && slices.Contains(strings.Split(listed, ","), workload)
		of = "node view of " + listed
		if listed == "" {
			of = "no workload"
		}
	}
	if !ok {
		s.logger.Warn("restore refused: the recovery point is another workload's", "workload", workload, "snapshot", snap.ID, "of", of)
		return &RepositoryError{Status: http.StatusUnprocessableEntity, Code: CodeWrongRecoveryPoint, Message: fmt.Sprintf(
			"recovery point %s is of %s, not of workload %s: restore a recovery point of %s (the clusterguard_recovery_points data source lists them)",
			snap.ShortID(), of, workload, workload)}
	}
	if cluster != "" && snap.Cluster != cluster {
		s.logger.Warn("restore refused: the recovery point is another cluster's", "workload", workload, "snapshot", snap.ID, "snapshot_cluster", snap.Cluster, "cluster", cluster)
		return &RepositoryError{Status: http.StatusUnprocessableEntity, Code: CodeWrongRecoveryPoint, Message: fmt.Sprintf(
			"recovery point %s was taken in cluster %q, not in cluster %q: restore a recovery point of cluster %q",
			snap.ShortID(), snap.Cluster, cluster, cluster)}
	}
	return nil
}
