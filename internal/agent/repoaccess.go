package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/location"
)

// Error codes of requests that name a repository.
const (
	// CodeUnknownRepository: the request names a repository the agent's
	// config has no block for.
	CodeUnknownRepository = "unknown_repository"
	// CodeRepositoryMismatch: the configured repository of that name is not
	// the one the engine knows (its id differs).
	CodeRepositoryMismatch = "repository_mismatch"
)

// RepositoryError refuses a request's repository before anything is read
// or written; Status and Code are what the API answers.
type RepositoryError struct {
	Status  int
	Code    string
	Message string
}

func (e *RepositoryError) Error() string { return e.Message }

// checkRepository refuses, with 422 unknown_repository, a request naming a
// repository the agent is not configured for. Handlers call it before they
// freeze a workload, so a wrong name costs no stun.
func (s *Server) checkRepository(w http.ResponseWriter, name string) bool {
	if _, ok := s.cfg.Repository(name); ok {
		return true
	}
	s.logger.Warn("request names an unknown repository", "repository", name, "configured", s.cfg.RepositoryNames())
	s.writeError(w, http.StatusUnprocessableEntity, CodeUnknownRepository, s.cfg.unknownRepositoryMessage(name))
	return false
}

// writeRepositoryError answers a *RepositoryError in err's chain with its
// own status and code; it reports whether it did.
func (s *Server) writeRepositoryError(w http.ResponseWriter, err error) bool {
	var re *RepositoryError
	if !errors.As(err, &re) {
		return false
	}
	s.writeError(w, re.Status, re.Code, err.Error())
	return true
}

// openRepository opens the configured repository name; the caller runs the
// returned close. With wantID set, a repository whose id differs is closed
// again and refused: the block points at another repository than the one
// the engine registered under that name.
func (s *Server) openRepository(ctx context.Context, name, wantID string) (*repository.Repository, string, func(), error) {
	rc, ok := s.cfg.Repository(name)
	if !ok {
		return nil, "", nil, &RepositoryError{Status: http.StatusUnprocessableEntity, Code: CodeUnknownRepository, Message: s.cfg.unknownRepositoryMessage(name)}
	}
	be, err := location.Open(ctx, rc.location())
	if err != nil {
		return nil, "", nil, fmt.Errorf("open repository %q (%s:%d): %w", name, rc.Range.Filename, rc.Range.Start.Line, err)
	}
	repo, err := repository.Open(ctx, be, rc.Password.Reveal(), repository.OpenOptions{Now: s.now})
	if err != nil {
		be.Close()
		return nil, "", nil, fmt.Errorf("open repository %q at %s: %w; check the url and password_file of its block in %s", name, be.Location(), err, s.cfg.Path)
	}
	closeRepo := func() { repo.Close(); be.Close() }
	s.repoIDs.Store(name, repo.ID())
	if wantID != "" && repo.ID() != wantID {
		closeRepo()
		return nil, "", nil, &RepositoryError{Status: http.StatusConflict, Code: CodeRepositoryMismatch, Message: fmt.Sprintf(
			"repository %q on node %s is %s with id %s, but the engine's repository %q has id %s: point the repository %q block (%s:%d) at the repository the engine registered, or register this one under another name",
			name, s.cfg.Node, be.Location(), repo.ID(), name, wantID, name, rc.Range.Filename, rc.Range.Start.Line)}
	}
	return repo, be.Location(), closeRepo, nil
}

// repositoryFacts lists the configured repositories for GET /v1/node, with
// the id of each one opened since the agent started.
func (s *Server) repositoryFacts() []api.RepositoryFact {
	out := make([]api.RepositoryFact, 0, len(s.cfg.Repositories))
	for _, name := range s.cfg.RepositoryNames() {
		f := api.RepositoryFact{Name: name}
		if id, ok := s.repoIDs.Load(name); ok {
			f.ID = id.(string)
		}
		out = append(out, f)
	}
	return out
}

// decodeStrict decodes a request body that must hold exactly the fields of
// v: a field the agent does not know (a "url" or "password" from an old
// engine, a typo) is refused rather than silently ignored.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("the body holds more than one JSON value")
	}
	return nil
}
