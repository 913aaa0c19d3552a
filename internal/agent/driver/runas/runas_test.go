package runas

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestCanFollowsModesOwnersAndParents(t *testing.T) {
	u := User{Name: "someone", UID: 4242, GID: 4242, Groups: []int{4242}}
	dir, err := os.MkdirTemp("", "cg-runas-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	chmod := func(p string, m os.FileMode) {
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	chmod(dir, 0o755)
	if err := u.Can(file, Read); err != nil {
		t.Errorf("read of a 0644 file in a 0755 directory: %v", err)
	}
	if err := u.Can(file, Read|Write); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("write of someone else's 0644 file = %v, want a permission error", err)
	}
	chmod(dir, 0o700)
	if err := u.Can(file, Read); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("read below a 0700 directory of another owner = %v, want a permission error", err)
	}
	if os.Geteuid() == 0 {
		chmod(dir, 0o755)
		if err := os.Chown(file, 4242, 0); err != nil {
			t.Fatal(err)
		}
		chmod(file, 0o600)
		if err := u.Can(file, Read|Write); err != nil {
			t.Errorf("read and write of the user's own 0600 file: %v", err)
		}
		if err := os.Chown(file, 0, 4242); err != nil {
			t.Fatal(err)
		}
		chmod(file, 0o660)
		if err := u.Can(file, Read|Write); err != nil {
			t.Errorf("read and write through the user's group: %v", err)
		}
	}
	if err := (User{UID: 0}).Can("/root", Read|Write|Execute); err != nil {
		t.Errorf("root: %v", err)
	}
}

func TestLookupByNameAndUID(t *testing.T) {
	byName, err := Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	byID, err := Lookup(itoa(byName.UID))
	if err != nil || byID.Name != "nobody" {
		t.Fatalf("Lookup(%d) = %+v, %v; want nobody", byName.UID, byID, err)
	}
	if len(byName.Groups) == 0 || byName.Groups[0] != byName.GID {
		t.Errorf("groups %v do not start with the primary group %d", byName.Groups, byName.GID)
	}
	if _, err := Lookup("no-such-user-cg"); err == nil {
		t.Error("Lookup of an unknown user succeeded")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
