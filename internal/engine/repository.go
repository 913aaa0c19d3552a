package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/location"
)

// RepositoryInfo is what registering or inspecting a repository reports.
type RepositoryInfo struct {
	Repository  catalog.Repository
	Created     bool // initialised now (false: attached to an existing one)
	Location    string
	Snapshots   int
	Initialised bool
}

func locationConfig(r catalog.Repository) location.Config {
	return location.Config{
		URL: r.URL, Endpoint: r.Endpoint, Region: r.Region, AccessKeyID: r.AccessKeyID,
		SecretAccessKey: r.SecretAccessKey, SessionToken: r.SessionToken, PathStyle: r.PathStyle, Insecure: r.Insecure,
	}
}

// ValidateRepository checks a repository definition without touching it.
func ValidateRepository(r catalog.Repository) error {
	var errs []error
	if err := ValidateName("name", r.Name); err != nil {
		errs = append(errs, err)
	}
	if err := locationConfig(r).Validate(); err != nil {
		errs = append(errs, &ValidationError{Field: "url", Reason: err.Error()})
	}
	if r.Password == "" {
		errs = append(errs, &ValidationError{Field: "password", Reason: "must not be empty: it unlocks the repository's encryption key"})
	}
	return errors.Join(errs...)
}

// RegisterRepository attaches to the repository at r.URL that r.Password
// opens and records it in the catalog. It never creates one: a location
// without a repository is an error (a mistyped path must not silently
// become a new, empty repository); CreateRepository initialises one.
func (e *Engine) RegisterRepository(ctx context.Context, r catalog.Repository) (RepositoryInfo, error) {
	return e.registerRepository(ctx, r, false)
}

// CreateRepository initialises a repository at r.URL, or attaches to the one
// already there when r.Password opens it (so a retried apply succeeds), and
// records it in the catalog. A new repository's password must pass
// repository.CheckNewPassword.
func (e *Engine) CreateRepository(ctx context.Context, r catalog.Repository) (RepositoryInfo, error) {
	return e.registerRepository(ctx, r, true)
}

func (e *Engine) registerRepository(ctx context.Context, r catalog.Repository, create bool) (RepositoryInfo, error) {
	if err := ValidateRepository(r); err != nil {
		return RepositoryInfo{}, err
	}
	be, err := location.Open(ctx, locationConfig(r))
	if err != nil && create {
		// Nothing there yet (no directory or bucket): make it, but only for
		// a password a new repository may have.
		if perr := repository.CheckNewPassword(r.Password); perr != nil {
			return RepositoryInfo{}, &ValidationError{Field: "password", Reason: perr.Error()}
		}
		be, err = location.Create(ctx, locationConfig(r))
		if err != nil {
			return RepositoryInfo{}, fmt.Errorf("repository %q at %s: %w", r.Name, r.URL, err)
		}
	} else if err != nil {
		return RepositoryInfo{}, fmt.Errorf("repository %q: no repository at %s (%w); check the URL, or set create = true to initialise one", r.Name, r.URL, err)
	}
	defer be.Close()
	info := RepositoryInfo{Location: be.Location(), Initialised: true}
	repo, err := repository.Open(ctx, be, r.Password, repository.OpenOptions{Now: e.now})
	switch {
	case errors.Is(err, repository.ErrNoRepository) && !create:
		return RepositoryInfo{}, fmt.Errorf("repository %q: no repository at %s; check the URL, or set create = true to initialise one: %w", r.Name, be.Location(), err)
	case errors.Is(err, repository.ErrNoRepository):
		if err := repository.CheckNewPassword(r.Password); err != nil {
			return RepositoryInfo{}, &ValidationError{Field: "password", Reason: err.Error()}
		}
		e.log.InfoContext(ctx, "initialising repository", "repository", r.Name, "location", be.Location())
		repo, err = repository.Init(ctx, be, r.Password, repository.InitOptions{})
		if err != nil {
			return RepositoryInfo{}, fmt.Errorf("initialising repository %q at %s: %w", r.Name, be.Location(), err)
		}
		info.Created = true
	case errors.Is(err, repository.ErrWrongPassword):
		return RepositoryInfo{}, fmt.Errorf("repository %q: %s already holds a repository and the password does not open it: %w", r.Name, be.Location(), err)
	case err != nil:
		return RepositoryInfo{}, fmt.Errorf("opening repository %q at %s: %w", r.Name, be.Location(), err)
	default:
		e.log.InfoContext(ctx, "attached to existing repository", "repository", r.Name, "location", be.Location())
	}
	defer repo.Close()
	e.rememberRepositoryID(r, repo.ID())
	snaps, err := repo.Snapshots(ctx, repository.SnapshotFilter{})
	if err != nil {
		return RepositoryInfo{}, fmt.Errorf("listing snapshots of repository %q: %w", r.Name, err)
	}
	info.Snapshots = len(snaps)
	now := e.now().UTC()
	r.CreatedAt, r.UpdatedAt = now, now
	if old, err := e.store.GetRepository(ctx, r.Name); err == nil {
		r.CreatedAt = old.CreatedAt
	}
	if err := e.store.PutRepository(ctx, r); err != nil {
		return RepositoryInfo{}, fmt.Errorf("recording repository %q in the catalog: %w", r.Name, err)
	}
	info.Repository = r
	return info, nil
}

// GetRepository returns a registered repository.
func (e *Engine) GetRepository(ctx context.Context, name string) (catalog.Repository, error) {
	return e.store.GetRepository(ctx, name)
}

// OpenRepository opens a registered repository for reading or maintenance.
// The caller closes both the repository and the backend through the
// returned func.
func (e *Engine) OpenRepository(ctx context.Context, name string) (*repository.Repository, func(), error) {
	r, err := e.store.GetRepository(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	be, err := location.Open(ctx, locationConfig(r))
	if err != nil {
		return nil, nil, fmt.Errorf("repository %q at %s: %w", r.Name, r.URL, err)
	}
	repo, err := repository.Open(ctx, be, r.Password, repository.OpenOptions{Now: e.now})
	if err != nil {
		be.Close()
		return nil, nil, fmt.Errorf("opening repository %q at %s: %w", r.Name, be.Location(), err)
	}
	e.rememberRepositoryID(r, repo.ID())
	return repo, func() { repo.Close(); be.Close() }, nil
}

// UnregisterRepository forgets a repository. With destroyData every object
// in it is deleted first; otherwise the data stays where it is.
func (e *Engine) UnregisterRepository(ctx context.Context, name string, destroyData bool) error {
	r, err := e.store.GetRepository(ctx, name)
	if err != nil {
		return err
	}
	e.repoIDs.Delete(name)
	if destroyData {
		be, err := location.Open(ctx, locationConfig(r))
		if err != nil {
			return fmt.Errorf("repository %q at %s: %w", r.Name, r.URL, err)
		}
		defer be.Close()
		e.log.WarnContext(ctx, "destroying repository data", "repository", name, "location", be.Location())
		// Snapshots first, so an interrupted destroy never leaves snapshots
		// that point at deleted packs; keys and config last.
		for _, t := range []repository.FileType{repository.SnapshotFile, repository.IndexFile, repository.PackFile, repository.LockFile, repository.KeyFile, repository.ConfigFile} {
			var names []string
			if err := be.List(ctx, t, func(fi repository.FileInfo) error { names = append(names, fi.Name); return nil }); err != nil {
				return fmt.Errorf("listing %s of repository %q: %w", t, name, err)
			}
			for _, n := range names {
				if err := be.Remove(ctx, repository.Handle{Type: t, Name: n}); err != nil {
					return fmt.Errorf("deleting %s/%s of repository %q: %w", t, n, name, err)
				}
			}
		}
		points, err := e.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Repository: name})
		if err != nil {
			return err
		}
		for _, p := range points {
			if err := e.store.DeleteRecoveryPoint(ctx, p.ID); err != nil && !errors.Is(err, catalog.ErrNotFound) {
				return err
			}
		}
	}
	return e.store.DeleteRepository(ctx, name)
}

// ApplyRetention forgets a group's recovery points that its retention
// does not keep, prunes the data nobody references any more, and drops
// them from the index. A group without retention keeps everything.
func (e *Engine) ApplyRetention(ctx context.Context, group string) (removed int, err error) {
	g, err := e.store.GetGroup(ctx, group)
	if err != nil {
		return 0, err
	}
	policy := repository.RetentionPolicy{
		Last: g.Retention.KeepLast, Hourly: g.Retention.KeepHourly, Daily: g.Retention.KeepDaily,
		Weekly: g.Retention.KeepWeekly, Monthly: g.Retention.KeepMonthly, Yearly: g.Retention.KeepYearly,
		Within: g.Retention.KeepWithin,
	}
	if policy.Empty() {
		return 0, nil
	}
	repo, closeRepo, err := e.OpenRepository(ctx, g.Repository)
	if err != nil {
		return 0, err
	}
	defer closeRepo()
	res, err := repo.Forget(ctx, policy, repository.SnapshotFilter{Cluster: g.Cluster, Group: g.Name}, e.now(), false)
	if err != nil {
		return 0, fmt.Errorf("applying retention of group %q: %w", group, err)
	}
	forgotten := map[string]bool{}
	for _, fg := range res.Groups {
		for _, s := range fg.Remove {
			forgotten[s.ID] = true
		}
	}
	if len(forgotten) > 0 {
		// Node views are indexed once per workload ("<snapshot>@<workload>").
		points, err := e.store.RecoveryPoints(ctx, catalog.RecoveryPointFilter{Group: g.Name, Repository: g.Repository})
		if err != nil {
			return res.Removed, err
		}
		for _, p := range points {
			if forgotten[SnapshotOf(p.ID)] {
				if err := e.store.DeleteRecoveryPoint(ctx, p.ID); err != nil && !errors.Is(err, catalog.ErrNotFound) {
					return res.Removed, err
				}
			}
		}
	}
	if res.Removed > 0 {
		if _, err := repo.Prune(ctx, repository.PruneOptions{}); err != nil {
			// Forgotten snapshots are gone; space is reclaimed by the next prune.
			e.log.WarnContext(ctx, "prune after retention failed; space is reclaimed by the next prune", "group", group, "error", err.Error())
		}
	}
	return res.Removed, nil
}

// ChangeRepositoryPassword re-wraps the repository's master key with a new
// password (data is never re-encrypted) and records it.
func (e *Engine) ChangeRepositoryPassword(ctx context.Context, name, newPassword string) error {
	if err := repository.CheckNewPassword(newPassword); err != nil {
		return &ValidationError{Field: "password", Reason: err.Error()}
	}
	r, err := e.store.GetRepository(ctx, name)
	if err != nil {
		return err
	}
	if r.Password == newPassword {
		return nil
	}
	repo, closeRepo, err := e.OpenRepository(ctx, name)
	if err != nil {
		return err
	}
	defer closeRepo()
	if err := repo.ChangePassword(ctx, newPassword); err != nil {
		return fmt.Errorf("changing the password of repository %q: %w", name, err)
	}
	r.Password, r.UpdatedAt = newPassword, e.now().UTC()
	return e.store.PutRepository(ctx, r)
}

// UpdateRepositoryAccess records new access settings (endpoint,
// credentials) for the same repository location.
func (e *Engine) UpdateRepositoryAccess(ctx context.Context, r catalog.Repository) error {
	old, err := e.store.GetRepository(ctx, r.Name)
	if err != nil {
		return err
	}
	r.Password, r.CreatedAt, r.UpdatedAt = old.Password, old.CreatedAt, e.now().UTC()
	if err := ValidateRepository(r); err != nil {
		return err
	}
	e.repoIDs.Delete(r.Name) // learned with the old access; repositoryID keys on it too
	return e.store.PutRepository(ctx, r)
}

// ValidateRepositoryURL checks a repository URL alone (plan time).
func ValidateRepositoryURL(raw string) error {
	_, err := location.Parse(raw)
	return err
}
