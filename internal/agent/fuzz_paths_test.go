package agent

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// treeState records every entry under dir (never following symlinks): its
// type and mode, a regular file's content, a symlink's target.
func treeState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(dir, p)
		desc := fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		}
		out[r] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// changed lists the entries that differ between two tree states.
func changed(before, after map[string]string) []string {
	var out []string
	for p, v := range after {
		if before[p] != v {
			out = append(out, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// buildTree creates the entries a fuzz spec lists under dir, one a line:
// "d NAME", "f NAME" or "l NAME TARGET" ($OUT in TARGET is the outside
// directory). Entries the root refuses (they would leave dir) are skipped:
// the setup itself never writes outside.
func buildTree(dir, spec, outside string) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return
	}
	defer root.Close()
	for i, line := range strings.Split(spec, "\n") {
		if i >= 64 || len(line) > 8192 {
			break
		}
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "d":
			_ = root.MkdirAll(rest, 0o777)
		case "f":
			_ = root.MkdirAll(filepath.Dir(rest), 0o755)
			_ = root.WriteFile(rest, []byte("data of "+rest), 0o644)
		case "l":
			name, target, _ := strings.Cut(rest, " ")
			_ = root.MkdirAll(filepath.Dir(name), 0o755)
			_ = root.Symlink(strings.ReplaceAll(target, "$OUT", outside), name)
		}
	}
}

// FuzzSyncMirrorPaths: whatever a workload's user makes of its paths
// between two backups (names with "..", symlinks in and out, entries that
// change type, very long names), the mirror sync writes nothing outside
// the mirror.
func FuzzSyncMirrorPaths(f *testing.F) {
	long := strings.Repeat("n", 255)
	for _, seed := range [][2]string{
		{"l data $OUT", "d data\nf data/passwd"},                                  // C1, absolute link
		{"l data ../../../outside", "d data\nf data/passwd"},                      // C1, relative link
		{"f a\nl b a\nd c\nf c/x", "l a $OUT\nf b\nl c $OUT/x\nd c/y"},            // every type change
		{"l d other\nd other\nf other/k", "f d/k\nd other"},                       // a link inside the mirror
		{"f ../../outside/passwd\nl ../x $OUT", "f ../passwd"},                    // names with ..
		{"d " + long + "\nf " + long + "/" + long, "l " + long + " $OUT"},         // long names
		{"f " + strings.Repeat("deep/", 200) + "x", "l deep $OUT\nf deep/passwd"}, // long paths
		{"l . $OUT\nl .. $OUT", "f ./passwd"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, first, second string) {
		base := t.TempDir()
		volume, mirror, outside := filepath.Join(base, "volume"), filepath.Join(base, "mirror"), filepath.Join(base, "outside")
		for _, d := range []string{filepath.Join(volume, "apps/web"), outside} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(outside, "passwd"), []byte("root:x:0:0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		want := treeState(t, outside)
		for round, spec := range []string{first, second} {
			if err := os.RemoveAll(filepath.Join(volume, "apps/web")); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(volume, "apps/web"), 0o755); err != nil {
				t.Fatal(err)
			}
			buildTree(filepath.Join(volume, "apps/web"), spec, outside)
			// Errors (a name too long for the file system) are fine; an
			// escape is not.
			_, _ = syncMirror(t.Context(), volume, []string{"apps/web"}, mirror)
			if diff := changed(want, treeState(t, outside)); len(diff) > 0 {
				t.Fatalf("sync %d wrote outside the mirror: %q changed", round+1, diff)
			}
			if top, _ := os.ReadDir(base); len(top) != 3 {
				t.Fatalf("sync %d created entries beside the mirror: %v", round+1, top)
			}
		}
	})
}

// FuzzRestorePlacement: whatever file and destination a restore request
// names, and whatever symlink the workload placed, an accepted file-level
// restore writes only under the workload's paths and the allowed
// destinations, never into .clusterguard or outside the volume.
func FuzzRestorePlacement(f *testing.F) {
	for _, seed := range [][3]string{
		{"apps/web/a", "", "x"},
		{"apps/web/l/coordinator.json", "", "../../.clusterguard"},
		{"coordinator.json", "apps/web/l", "../../.clusterguard"},
		{"apps/web/a", "restored/l", "../apps/other"},
		{"apps/web/l/passwd", "", "$OUT"},
		{"passwd", "restored/l", "$OUT"},
		{"apps/web/../../outside/passwd", "", "x"},
		{"apps/web/a", "../outside", "x"},
		{"apps/web/a", "/etc", "x"},
		{"apps/web/" + strings.Repeat("n", 300), "restored", "x"},
		{"apps/web/" + strings.Repeat("d/", 600) + "f", "restored", "x"},
		{"apps/web/l", "", "../other"},
		{"apps/web/a", "restored/../apps/other", "x"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, file, dest, linkTarget string) {
		base := t.TempDir()
		volume, staging, outside := filepath.Join(base, "volume"), filepath.Join(base, "staging"), filepath.Join(base, "outside")
		for _, d := range []string{filepath.Join(volume, "apps/web"), filepath.Join(volume, "apps/other"), filepath.Join(volume, "restored"), filepath.Join(volume, MetadataDir), staging, outside} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for p, content := range map[string]string{
			filepath.Join(outside, "passwd"): "root:x:0:0\n", filepath.Join(volume, CoordinatorMarkerFile): `{"epoch": 7}`,
			filepath.Join(volume, "apps/other/a"): "other's", filepath.Join(volume, "apps/web/a"): "live",
		} {
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		target := strings.ReplaceAll(linkTarget, "$OUT", outside)
		_ = os.Symlink(target, filepath.Join(volume, "apps/web/l"))
		_ = os.Symlink(target, filepath.Join(volume, "restored/l"))
		// The staging area holds the file as the repository restored it.
		buildTree(staging, "f "+filepath.Clean(filepath.FromSlash(file)), outside)

		s := &Server{cfg: &Config{SharedVolume: volume, RestoreDestinations: []string{"restored"}, Node: "node-1", Path: "agent.hcl"}}
		wl := &workload{cfg: WorkloadConfig{Name: "web", Paths: []string{"apps/web"}}}
		beforeOutside, beforeVolume := treeState(t, outside), treeState(t, volume)
		req := api.RestoreRequest{OperationID: "op", SnapshotID: "0123abcd", Files: []string{file}, Destination: dest}
		if s.validateRestore(wl, &req) != nil || s.checkRestoreDestination(wl, req.Destination) != nil {
			return // refused before anything is written
		}
		_ = placeFiles(volume, staging, req.Files, req.Destination, s.restorePrefixes(wl))
		if diff := changed(beforeOutside, treeState(t, outside)); len(diff) > 0 {
			t.Fatalf("restore of %q to %q wrote outside the volume: %q", file, dest, diff)
		}
		for _, p := range changed(beforeVolume, treeState(t, volume)) {
			if !underAny(filepath.ToSlash(p), []string{"apps/web", "restored"}) {
				t.Fatalf("restore of %q to %q changed %s, outside the workload's paths and restore_destinations (all changes: %q)",
					file, dest, p, changed(beforeVolume, treeState(t, volume)))
			}
		}
		if got, err := os.ReadFile(filepath.Join(volume, CoordinatorMarkerFile)); err != nil || !bytes.Equal(got, []byte(`{"epoch": 7}`)) {
			t.Fatalf("restore of %q to %q changed the coordinator marker: %q, %v", file, dest, got, err)
		}
	})
}
