package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/location"
)

// Agents open only the repositories their own config defines (H1): the
// engine names the repository in a backup or restore request and sends its
// id, never its URL, credentials or password. A repository's name in the
// catalog (the clusterguard_repository's name) must therefore equal the
// name of a `repository "NAME" {}` block in every agent's config.

// Node problems of the repository check.
const (
	// ProblemRepositoryMissing: the agent's config has no block for the repository.
	ProblemRepositoryMissing NodeProblem = "repository_missing"
	// ProblemRepositoryMismatch: the agent's block of that name opens another repository.
	ProblemRepositoryMismatch NodeProblem = "repository_mismatch"
)

// RepositoryNotOnNodesError lists the nodes of a cluster that cannot use a
// protection group's repository.
type RepositoryNotOnNodesError struct {
	Repository string
	Cluster    string
	Nodes      []*NodeError
}

func (e *RepositoryNotOnNodesError) Error() string {
	parts := make([]string, len(e.Nodes))
	for i, n := range e.Nodes {
		parts[i] = n.Error()
	}
	return fmt.Sprintf("repository %q cannot be used on %d node(s) of cluster %q: %s", e.Repository, len(e.Nodes), e.Cluster, strings.Join(parts, "; "))
}

// repositoryIDTimeout bounds opening a repository only to learn its id.
const repositoryIDTimeout = 15 * time.Second

type knownRepositoryID struct {
	url, endpoint, id string
}

// rememberRepositoryID records the id of a repository the engine opened.
func (e *Engine) rememberRepositoryID(r catalog.Repository, id string) {
	e.repoIDs.Store(r.Name, knownRepositoryID{url: r.URL, endpoint: r.Endpoint, id: id})
}

// repositoryID returns the id of a registered repository, opening it once
// per engine to learn it. When the engine cannot open it, it returns ""
// and agents check the name only; it is not an error here, since the
// agents, not the engine, read and write the data of a run. The failure is
// remembered too, so an unreachable bucket costs one timeout per engine,
// not one per request.
func (e *Engine) repositoryID(ctx context.Context, r catalog.Repository) string {
	if v, ok := e.repoIDs.Load(r.Name); ok {
		if k := v.(knownRepositoryID); k.url == r.URL && k.endpoint == r.Endpoint {
			return k.id
		}
	}
	unknown := func(err error) string {
		e.log.WarnContext(ctx, "cannot open the repository to learn its id; agents check its name only", "repository", r.Name, "error", err.Error())
		e.rememberRepositoryID(r, "")
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, repositoryIDTimeout)
	defer cancel()
	be, err := location.Open(ctx, locationConfig(r))
	if err != nil {
		return unknown(err)
	}
	defer be.Close()
	repo, err := repository.Open(ctx, be, r.Password, repository.OpenOptions{Now: e.now})
	if err != nil {
		return unknown(err)
	}
	defer repo.Close()
	e.rememberRepositoryID(r, repo.ID())
	return repo.ID()
}

// checkRepositoryOnNodes reports every reachable node of the cluster whose
// agent has no repository block named r.Name, or one that opens a
// repository with another id than id (when both are known). Unreachable
// nodes are left to the cluster checks.
func checkRepositoryOnNodes(st ClusterStatus, r catalog.Repository, id string) error {
	var bad []*NodeError
	for _, n := range st.Nodes {
		if n.Err != nil {
			continue
		}
		var have []string
		found, agentID := false, ""
		for _, f := range n.Facts.Repositories {
			have = append(have, f.Name)
			if f.Name == r.Name {
				found, agentID = true, f.ID
			}
		}
		switch {
		case !found:
			list := "none"
			if len(have) > 0 {
				list = strings.Join(have, ", ")
			}
			bad = append(bad, &NodeError{Node: n.Name, Endpoint: n.Endpoint, Problem: ProblemRepositoryMissing, Detail: fmt.Sprintf(
				"the agent has no repository %q (its config defines: %s); add `repository %q { url = %q, password_file = \"/etc/clusterguard/%s.password\" }` to the agent config of node %s, with the repository's password in that file (mode 0600), and restart the agent",
				r.Name, list, r.Name, r.URL, r.Name, n.Name)})
		case id != "" && agentID != "" && agentID != id:
			bad = append(bad, &NodeError{Node: n.Name, Endpoint: n.Endpoint, Problem: ProblemRepositoryMismatch, Detail: fmt.Sprintf(
				"the agent's repository %q has id %s, but the repository registered under that name (%s) has id %s; point the agent's repository %q block at %s",
				r.Name, agentID, r.URL, id, r.Name, r.URL)})
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &RepositoryNotOnNodesError{Repository: r.Name, Cluster: st.Cluster.Name, Nodes: bad}
}

// checkGroupRepository probes the group's cluster and checks that every
// reachable node can use the group's repository.
func (e *Engine) checkGroupRepository(ctx context.Context, g catalog.ProtectionGroup, r catalog.Repository) error {
	st, err := e.ClusterStatus(ctx, g.Cluster)
	if err != nil {
		return fmt.Errorf("protection group %q: cluster %q: %w", g.Name, g.Cluster, err)
	}
	if err := checkRepositoryOnNodes(st, r, e.repositoryID(ctx, r)); err != nil {
		return fmt.Errorf("protection group %q: %w", g.Name, err)
	}
	return nil
}
