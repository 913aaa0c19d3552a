package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveWorkloadPath(t *testing.T) {
	root := t.TempDir()
	volume := filepath.Join(root, "volume")
	outside := filepath.Join(root, "outside")
	for _, dir := range []string{filepath.Join(volume, "apps", "web"), filepath.Join(volume, "data"), filepath.Join(volume, MetadataDir), outside} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"apps/inside-link": filepath.Join(volume, "data"), // absolute target, still inside
		"apps/rel-link":    "../data",                     // relative target, still inside
		"apps/out-link":    outside,                       // leaves the volume
		"apps/up-link":     "../..",                       // climbs out through a relative link
		"apps/root-link":   "..",                          // the volume root itself
		"apps/dangling":    filepath.Join(root, "gone"),   // target does not exist, outside
		"apps/meta-link":   "../" + MetadataDir,           // inside, but into the metadata directory
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(volume, name)); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		rel     string
		want    string // absolute result, when accepted
		wantErr string // part of the error, when refused
	}{
		{rel: "apps/web", want: filepath.Join(volume, "apps/web")},
		{rel: "apps//web/", want: filepath.Join(volume, "apps/web")},
		{rel: "apps/new/not-yet-created", want: filepath.Join(volume, "apps/new/not-yet-created")},
		{rel: "apps/web/../web", want: filepath.Join(volume, "apps/web")},
		{rel: "apps/inside-link", want: filepath.Join(volume, "apps/inside-link")},
		{rel: "apps/rel-link/sub", want: filepath.Join(volume, "apps/rel-link/sub")},
		{rel: "", wantErr: "empty"},
		{rel: "/etc", wantErr: "is absolute"},
		{rel: "..", wantErr: "climbs out"},
		{rel: "../outside", wantErr: "climbs out"},
		{rel: "apps/../../outside", wantErr: "climbs out"},
		{rel: ".", wantErr: "the shared volume itself"},
		{rel: "apps/..", wantErr: "the shared volume itself"},
		{rel: ".clusterguard/volume-id", wantErr: "reserves for its own metadata"},
		{rel: "apps/out-link", wantErr: "through a symlink"},
		{rel: "apps/out-link/deeper/not-there", wantErr: "through a symlink"},
		{rel: "apps/up-link", wantErr: "through a symlink"},
		{rel: "apps/root-link", wantErr: "the shared volume itself"},
		{rel: "apps/dangling", wantErr: "resolve workload path"},
		{rel: "apps/meta-link", wantErr: "leads into .clusterguard through a symlink"},
		{rel: "apps/meta-link/coordinator.json", wantErr: "leads into .clusterguard through a symlink"},
	}
	for _, tc := range cases {
		t.Run(tc.rel, func(t *testing.T) {
			got, err := ResolveWorkloadPath(volume, tc.rel)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ResolveWorkloadPath(%q) = %q, %v; want error containing %q", tc.rel, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ResolveWorkloadPath(%q) = %q, %v; want %q", tc.rel, got, err, tc.want)
			}
		})
	}
}

func TestResolveWorkloadPathVolumeBehindSymlink(t *testing.T) {
	// A volume mounted through a symlink (e.g. /srv/shared -> /mnt/nfs) is normal;
	// its paths must not count as escaping.
	root := t.TempDir()
	real := filepath.Join(root, "mnt")
	if err := os.MkdirAll(filepath.Join(real, "apps", "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	volume := filepath.Join(root, "shared")
	if err := os.Symlink(real, volume); err != nil {
		t.Fatal(err)
	}
	got, err := ResolveWorkloadPath(volume, "apps/db")
	if err != nil || got != filepath.Join(volume, "apps/db") {
		t.Fatalf("got %q, %v", got, err)
	}
}
