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
	s.logger.Warn("request names an unknown repository", "repository", name, "configured", s.cfg.RepositoryNames(), "config", s.cfg.Path)
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
	// The repository's location and the config's path stay in the agent's
	// log: an HTTP answer names only the block (any caller holding a token
	// reads it).
	be, err := location.Open(ctx, rc.location())
	if err != nil {
		s.logger.Warn("cannot open a configured repository", "repository", name, "block", fmt.Sprintf("%s:%d", rc.Range.Filename, rc.Range.Start.Line), "error", err)
		return nil, "", nil, &repositoryOpenError{name: name, node: s.cfg.Node, err: err}
	}
	repo, err := repository.Open(ctx, be, rc.Password.Reveal(), repository.OpenOptions{Now: s.now})
	if err != nil {
		s.logger.Warn("cannot open a configured repository", "repository", name, "location", be.Location(), "block", fmt.Sprintf("%s:%d", rc.Range.Filename, rc.Range.Start.Line), "error", err)
		be.Close()
		return nil, "", nil, &repositoryOpenError{name: name, node: s.cfg.Node, err: err}
	}
	closeRepo := func() { repo.Close(); be.Close() }
	s.repoIDs.Store(name, repo.ID())
	if wantID != "" && repo.ID() != wantID {
		closeRepo()
		s.logger.Warn("a request's repository id differs from the configured repository's", "repository", name, "location", be.Location(),
			"block", fmt.Sprintf("%s:%d", rc.Range.Filename, rc.Range.Start.Line), "id", repo.ID(), "engine_id", wantID)
		return nil, "", nil, &RepositoryError{Status: http.StatusConflict, Code: CodeRepositoryMismatch, Message: fmt.Sprintf(
			"repository %q on node %s has id %s, but the engine's repository %q has id %s: point the agent's repository %q block at the repository the engine registered (the agent's log names the block's location and line), or register this one under another name",
			name, s.cfg.Node, repo.ID(), name, wantID, name)}
	}
	return repo, be.Location(), closeRepo, nil
}

// repositoryOpenError is a configured repository the agent cannot open.
// Its message names the block and the kind of failure, not the location
// or the underlying error's text (which may hold a path or a URL); the
// agent logs those.
type repositoryOpenError struct {
	name, node string
	err        error
}

func (e *repositoryOpenError) Error() string {
	why := "it cannot be reached or read"
	switch {
	case errors.Is(e.err, repository.ErrWrongPassword):
		why = "its password_file holds the wrong password"
	case errors.Is(e.err, repository.ErrNoRepository):
		why = "there is no repository at its url (create it with the clusterguard_repository resource)"
	case errors.Is(e.err, repository.ErrLocked):
		why = "it is locked by another process"
	case errors.Is(e.err, context.Canceled), errors.Is(e.err, context.DeadlineExceeded):
		why = "the request ended before it was opened"
	}
	return fmt.Sprintf("cannot open repository %q on node %s: %s; the agent's log on that node has the details and the block's location", e.name, e.node, why)
}

func (e *repositoryOpenError) Unwrap() error { return e.err }

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
