package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// CodeDestinationNotAllowed: a file-level restore named a destination
// outside the workload's paths and the agent's restore_destinations.
const CodeDestinationNotAllowed = "destination_not_allowed"

// parseRestoreDestinations reads the optional top-level
//
//	restore_destinations = ["restored", "/srv/shared/scratch"]
//
// the directories file-level restores may write to besides each
// workload's own paths. Entries are relative to the shared volume or
// absolute inside it; like workload paths they may not leave the volume or
// name its metadata directory.
func (p *configParser) parseRestoreDestinations(a *hcl.Attribute) {
	var list []string
	if !p.decode(a.Expr, &list) {
		return
	}
	volume := p.cfg.SharedVolume
	if volume == "" {
		return // already reported
	}
	for _, d := range list {
		rel := d
		if filepath.IsAbs(d) {
			r, err := filepath.Rel(volume, filepath.Clean(d))
			if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				p.errorAt(a.Expr.Range(), "Invalid restore destination",
					fmt.Sprintf("%q is not inside the shared volume %s; restore destinations are directories on the volume, relative to it (e.g. \"restored\") or absolute inside it", d, volume))
				continue
			}
			rel = r
		}
		if _, err := ResolveWorkloadPath(volume, rel); err != nil {
			p.errorAt(a.Expr.Range(), "Invalid restore destination", err.Error())
			continue
		}
		clean := filepath.Clean(rel)
		if !slices.Contains(p.cfg.RestoreDestinations, clean) {
			p.cfg.RestoreDestinations = append(p.cfg.RestoreDestinations, clean)
		}
	}
}

// restorePrefixes are the places a file-level restore of wl may write to.
func (s *Server) restorePrefixes(wl *workload) []string {
	return append(slices.Clone(wl.cfg.Paths), s.cfg.RestoreDestinations...)
}

// checkRestoreDestination refuses a destination outside the workload's own
// paths and the configured restore_destinations, as written and as
// resolved through symlinks.
func (s *Server) checkRestoreDestination(wl *workload, dest string) error {
	if dest == "" {
		return nil // in place: validateRestore keeps files under the workload's paths
	}
	allowed, err := newPlacementPolicy(s.cfg.SharedVolume, s.restorePrefixes(wl))
	if err != nil {
		return err
	}
	clean := filepath.Clean(dest)
	if allowed.permits(clean) {
		if real, err := resolvedRel(s.cfg.SharedVolume, allowed.volumeReal, clean); err == nil && allowed.permitsResolved(real) {
			return nil
		}
	}
	dests := "none"
	if len(s.cfg.RestoreDestinations) > 0 {
		dests = strings.Join(s.cfg.RestoreDestinations, ", ")
	}
	return fmt.Errorf("destination %q is outside workload %s's paths (%s) and this agent's restore_destinations (%s); to allow file-level restores there, add restore_destinations = [%q] to the agent config %s on node %s and restart the agent",
		dest, wl.cfg.Name, strings.Join(wl.cfg.Paths, ", "), dests, clean, s.cfg.Path, s.cfg.Node)
}

// placementPolicy says where restored files may be placed: under one of
// the prefixes (relative to the volume), either as written or as their
// symlinks resolve now.
type placementPolicy struct {
	volumeReal string
	lexical    []string
	resolved   []string
}

func newPlacementPolicy(volume string, prefixes []string) (*placementPolicy, error) {
	real, err := filepath.EvalSymlinks(volume)
	if err != nil {
		return nil, fmt.Errorf("resolve shared volume %s: %w", volume, err)
	}
	p := &placementPolicy{volumeReal: real}
	for _, pre := range prefixes {
		pre = filepath.Clean(pre)
		p.lexical = append(p.lexical, pre)
		if r, err := resolvedRel(volume, real, pre); err == nil {
			p.resolved = append(p.resolved, r)
		}
	}
	return p, nil
}

func (p *placementPolicy) permits(rel string) bool {
	return underAny(filepath.ToSlash(rel), slashPaths(p.lexical))
}

// permitsResolved checks a path whose symlinks were resolved: it must be
// under a prefix as that resolves, or as written (a prefix that does not
// exist yet resolves to itself).
func (p *placementPolicy) permitsResolved(rel string) bool {
	return underAny(filepath.ToSlash(rel), slashPaths(p.resolved)) || p.permits(rel)
}

// resolvedRel resolves the symlinks in the existing part of rel (relative
// to volume) and returns the result relative to the volume's real path;
// an error when that leads out of the volume.
func resolvedRel(volume, volumeReal, rel string) (string, error) {
	existing, rest := filepath.Clean(rel), ""
	for existing != "." {
		if _, err := os.Lstat(filepath.Join(volume, existing)); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = filepath.Dir(existing)
	}
	real, err := filepath.EvalSymlinks(filepath.Join(volume, existing))
	if err != nil {
		return "", err
	}
	inside, err := filepath.Rel(volumeReal, filepath.Join(real, rest))
	if err != nil || inside == ".." || strings.HasPrefix(inside, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s leads out of the shared volume", rel)
	}
	return inside, nil
}
