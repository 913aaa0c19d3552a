package postgresql

import (
	"os"
	"path/filepath"
	"testing"
)

// The data directory belongs to the server's user, who can plant a link at
// the name of the agent's temporary owner record; the root agent must not
// write through it.
func TestOwnerRecordDoesNotFollowALinkInTheDataDirectory(t *testing.T) {
	data := initDataDir(t)
	victim := filepath.Join(scratchDir(t), "root-only-victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(data, ownerRecord+".tmp")); err != nil {
		t.Fatal(err)
	}
	d := newTestDriver(t, data)
	mustDo(t, "start", d.Start)
	if got, _ := os.ReadFile(victim); string(got) != "precious\n" {
		t.Errorf("the root file was overwritten through a link in the data directory: now %q", got)
	}
	if fi, err := os.Lstat(filepath.Join(data, ownerRecord)); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("owner record after start: %v %v, want a regular file", fi, err)
	}
	mustDo(t, "stop", d.Stop)
}
