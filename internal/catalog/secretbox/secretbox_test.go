package secretbox_test

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/secretbox"
)

func newBox(t *testing.T, b byte) *secretbox.Box {
	t.Helper()
	key := make([]byte, secretbox.KeySize)
	key[0] = b
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return box
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	box := newBox(t, 1)
	sealed, err := box.Seal("hunter2-long-password", "repositories/a/password")
	if err != nil || !secretbox.Sealed(sealed) || strings.Contains(sealed, "hunter2") {
		t.Fatalf("Seal = %q, %v", sealed, err)
	}
	if got, err := box.Open(sealed, "repositories/a/password"); err != nil || got != "hunter2-long-password" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// Bound to its row and column: moved elsewhere it does not open.
	for _, ad := range []string{"repositories/b/password", "repositories/a/session_token"} {
		if _, err := box.Open(sealed, ad); !errors.Is(err, secretbox.ErrWrongKey) {
			t.Errorf("Open under %s: %v, want ErrWrongKey", ad, err)
		}
	}
	if _, err := newBox(t, 2).Open(sealed, "repositories/a/password"); !errors.Is(err, secretbox.ErrWrongKey) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Open with another key: %v", err)
	}
	var none *secretbox.Box
	if _, err := none.Open(sealed, "x"); !errors.Is(err, secretbox.ErrWrongKey) || !strings.Contains(err.Error(), "CLUSTERGUARD_CATALOG_KEY") {
		t.Errorf("Open without a key: %v", err)
	}
	// Legacy plaintext and empty values pass through.
	if got, err := box.Open("plain-old", "x"); err != nil || got != "plain-old" {
		t.Errorf("Open(plaintext) = %q, %v", got, err)
	}
	if got, err := box.Seal("", "x"); err != nil || got != "" {
		t.Errorf("Seal(\"\") = %q, %v", got, err)
	}
}

func TestKeyFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "catalog.db.key")
	k1, err := secretbox.LoadOrCreateKeyFile(p)
	if err != nil || len(k1) != secretbox.KeySize {
		t.Fatalf("create: %d bytes, %v", len(k1), err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode(), err)
	}
	k2, err := secretbox.LoadOrCreateKeyFile(p)
	if err != nil || string(k2) != string(k1) {
		t.Fatalf("second load gave another key (%v)", err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := secretbox.LoadKeyFile(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key file: %v, want a refusal", err)
	}
	for _, s := range []string{base64.StdEncoding.EncodeToString(k1), base64.RawURLEncoding.EncodeToString(k1), strings.Repeat("ab", 32) + "\n"} {
		if _, err := secretbox.ParseKey(s); err != nil {
			t.Errorf("ParseKey(%q): %v", s, err)
		}
	}
	if _, err := secretbox.ParseKey("too short"); err == nil {
		t.Error("ParseKey accepted a short key")
	}
}
