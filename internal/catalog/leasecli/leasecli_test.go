package leasecli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/leasecli"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/sqlite"
)

var now = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := leasecli.Run(context.Background(), args, &out, &errb, func() time.Time { return now })
	return out.String(), errb.String(), code
}

// F4 break-glass: a lease left by a killed engine is listed and released,
// after which another node can take the coordinator role at once.
func TestLeaseListAndRelease(t *testing.T) {
	t.Setenv(leasecli.EnvCatalog, "")
	path := filepath.Join(t.TempDir(), "catalog.db")
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := s.AcquireLease(ctx, "prod", "node-3", "host/4242", 30*time.Second, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, "old", "node-1", "host/1", time.Second, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}

	out, errs, code := run(t, "list", "--catalog", path)
	if code != 0 || !strings.Contains(out, "prod") || !strings.Contains(out, "node-3") || !strings.Contains(out, "host/4242") || !strings.Contains(out, "in 30s") || !strings.Contains(out, "expired") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errs)
	}
	out, _, code = run(t, "list", "--catalog", path, "--json")
	var leases []struct {
		Cluster string `json:"cluster"`
		Node    string `json:"node"`
		Epoch   int64  `json:"epoch"`
		Expired bool   `json:"expired"`
	}
	if err := json.Unmarshal([]byte(out), &leases); code != 0 || err != nil || len(leases) != 2 || leases[1].Cluster != "prod" || leases[1].Epoch != l.Epoch || leases[1].Expired || !leases[0].Expired {
		t.Fatalf("list --json: exit %d, %v: %s", code, err, out)
	}

	if _, errs, code := run(t, "release", "--catalog", path, "--cluster", "prod", "--epoch", "99"); code != 1 || !strings.Contains(errs, "carries epoch") {
		t.Fatalf("release with a wrong epoch: exit %d: %s", code, errs)
	}
	if out, errs, code := run(t, "release", "--catalog", path, "--cluster", "prod"); code != 0 || !strings.Contains(out, "node-3") {
		t.Fatalf("release: exit %d: %s%s", code, out, errs)
	}
	if _, err := s.AcquireLease(ctx, "prod", "node-1", "other", 30*time.Second, now); err != nil {
		t.Fatalf("another node after the release: %v", err)
	}
	if _, errs, code := run(t, "release", "--catalog", path, "--cluster", "none"); code != 1 || !strings.Contains(errs, "holds no coordinator lease") {
		t.Fatalf("release of a cluster without lease: exit %d: %s", code, errs)
	}
}

func TestLeaseUsageAndMissingCatalog(t *testing.T) {
	t.Setenv(leasecli.EnvCatalog, "")
	missing := filepath.Join(t.TempDir(), "typo.db")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage"},
		{[]string{"list"}, 2, "--catalog is required"},
		{[]string{"release", "--catalog", missing}, 2, "--cluster is required"},
		{[]string{"frob", "--catalog", missing}, 2, "unknown command"},
		{[]string{"list", "--catalog", missing}, 1, "no catalog at"},
	} {
		_, errs, code := run(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("lease %v: exit %d, %q; want exit %d mentioning %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a mistyped catalog path was created: %v", err)
	}
}
