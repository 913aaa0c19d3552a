package engine

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
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

// knownRepositoryID is a learned id and the access it was learned with.
type knownRepositoryID struct {
	access [sha256.Size]byte
	id     string
}

// repositoryAccess identifies everything that decides which repository a
// record opens (location and credentials), so an id learned with other
// settings is never reused. Only the digest is kept.
func repositoryAccess(r catalog.Repository) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range []string{r.URL, r.Endpoint, r.Region, r.AccessKeyID, r.SecretAccessKey, r.SessionToken, r.Password,
		strconv.FormatBool(r.PathStyle), strconv.FormatBool(r.Insecure)} {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// rememberRepositoryID records the id of a repository the engine opened.
func (e *Engine) rememberRepositoryID(r catalog.Repository, id string) {
	e.repoIDs.Store(r.Name, knownRepositoryID{access: repositoryAccess(r), id: id})
}

// repositoryID returns the id of a registered repository, opening it to
// learn it the first time (per engine and access settings). Only an id is
// remembered, never a failure: a failure cached for the engine's life would
// turn the agents' id check off for good. Backups and restores fail closed
// on its error (the agents need the id to refuse a same-named block that
// opens another repository).
func (e *Engine) repositoryID(ctx context.Context, r catalog.Repository) (string, error) {
	if v, ok := e.repoIDs.Load(r.Name); ok {
		if k := v.(knownRepositoryID); k.access == repositoryAccess(r) {
			return k.id, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, repositoryIDTimeout)
	defer cancel()
	be, err := location.Open(ctx, locationConfig(r))
	if err != nil {
		return "", &RepositoryIDError{Repository: r.Name, Err: err}
	}
	defer be.Close()
	repo, err := repository.Open(ctx, be, r.Password, repository.OpenOptions{Now: e.now})
	if err != nil {
		return "", &RepositoryIDError{Repository: r.Name, Err: err}
	}
	defer repo.Close()
	e.rememberRepositoryID(r, repo.ID())
	return repo.ID(), nil
}

// RepositoryIDError: the engine could not open a registered repository to
// learn its id, so it cannot tell the agents which repository to accept.
type RepositoryIDError struct {
	Repository string
	Err        error
}

func (e *RepositoryIDError) Error() string {
	return fmt.Sprintf("cannot open repository %q to learn its id, which the agents need to refuse a same-named block that opens another repository: %v; "+
		"check that the engine can reach the repository with the clusterguard_repository's url, credentials and password, then retry", e.Repository, e.Err)
}

func (e *RepositoryIDError) Unwrap() error { return e.Err }

// checkResultRepositoryID refuses an agent's result that reports another
// repository id than the engine's: its recovery point is not in the
// repository the engine registered, so it must not be recorded as one.
func checkResultRepositoryID(node, repo, got, want string) error {
	if got == want {
		return nil
	}
	if got == "" {
		return fmt.Errorf("node %s did not report the id of the repository it wrote to (an agent older than the engine?); upgrade the agent to the engine's version; nothing was recorded", node)
	}
	return fmt.Errorf("node %s wrote into repository %q with id %s, but the engine's repository %q has id %s; point the agent's repository %q block at the registered repository; nothing was recorded",
		node, repo, got, repo, want, repo)
}

// checkRepositoryOnNodes reports every reachable node of the cluster whose
// agent has no repository block named r.Name. Unreachable nodes are left
// to the cluster checks. The id a node's facts show is not checked here:
// the agent learned it when it last opened the repository and keeps it, so
// after a repository is re-created at the same location it is stale. The
// agent checks the id itself on every request (409 repository_mismatch),
// against the repository as it is then; staleRepositoryFacts only warns.
func checkRepositoryOnNodes(st ClusterStatus, r catalog.Repository) error {
	var bad []*NodeError
	for _, n := range st.Nodes {
		if n.Err != nil {
			continue
		}
		var have []string
		found := false
		for _, f := range n.Facts.Repositories {
			have = append(have, f.Name)
			found = found || f.Name == r.Name
		}
		if !found {
			list := "none"
			if len(have) > 0 {
				list = strings.Join(have, ", ")
			}
			bad = append(bad, &NodeError{Node: n.Name, Endpoint: n.Endpoint, Problem: ProblemRepositoryMissing, Detail: fmt.Sprintf(
				"the agent has no repository %q (its config defines: %s); add `repository %q { url = %q, password_file = \"/etc/clusterguard/%s.password\" }` to the agent config of node %s, with the repository's password in that file (mode 0600), and restart the agent",
				r.Name, list, r.Name, r.URL, r.Name, n.Name)})
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &RepositoryNotOnNodesError{Repository: r.Name, Cluster: st.Cluster.Name, Nodes: bad}
}

// staleRepositoryFacts lists the nodes whose facts show another id for the
// repository than id: advisory (see checkRepositoryOnNodes).
func staleRepositoryFacts(st ClusterStatus, r catalog.Repository, id string) []string {
	var nodes []string
	for _, n := range st.Nodes {
		for _, f := range n.Facts.Repositories {
			if n.Err == nil && f.Name == r.Name && id != "" && f.ID != "" && f.ID != id {
				nodes = append(nodes, n.Name)
			}
		}
	}
	return nodes
}

// checkRunRepository learns the repository's id, failing closed when it
// cannot, and checks that every reachable node has a block for it. It
// returns the id to send with every request of the run.
func (e *Engine) checkRunRepository(ctx context.Context, st ClusterStatus, r catalog.Repository) (string, error) {
	id, err := e.repositoryID(ctx, r)
	if err != nil {
		return "", err
	}
	e.warnStaleRepositoryFacts(ctx, st, r, id)
	return id, checkRepositoryOnNodes(st, r)
}

func (e *Engine) warnStaleRepositoryFacts(ctx context.Context, st ClusterStatus, r catalog.Repository, id string) {
	if nodes := staleRepositoryFacts(st, r, id); len(nodes) > 0 {
		e.log.WarnContext(ctx, "agents last opened another repository under this name; each agent checks the id again on every request and refuses another repository",
			"repository", r.Name, "id", id, "nodes", strings.Join(nodes, ","))
	}
}

// checkGroupRepository probes the group's cluster and checks that every
// reachable node can use the group's repository. The id is not needed to
// define a group, so a repository the engine cannot reach now is no error
// here (every run learns the id and fails closed without it).
func (e *Engine) checkGroupRepository(ctx context.Context, g catalog.ProtectionGroup, r catalog.Repository) error {
	st, err := e.ClusterStatus(ctx, g.Cluster)
	if err != nil {
		return fmt.Errorf("protection group %q: cluster %q: %w", g.Name, g.Cluster, err)
	}
	id, err := e.repositoryID(ctx, r)
	if err != nil {
		e.log.WarnContext(ctx, "protection group written without learning its repository's id; its runs need it", "group", g.Name, "error", err.Error())
	}
	e.warnStaleRepositoryFacts(ctx, st, r, id)
	if err := checkRepositoryOnNodes(st, r); err != nil {
		return fmt.Errorf("protection group %q: %w", g.Name, err)
	}
	return nil
}
