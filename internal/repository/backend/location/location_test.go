package location_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/location"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/minio"
)

func TestParse(t *testing.T) {
	ok := []struct {
		in   string
		want location.Location
		str  string
	}{
		{"/var/lib/repo", location.Location{Kind: location.KindLocal, Path: "/var/lib/repo"}, "/var/lib/repo"},
		{"/var/lib/repo/", location.Location{Kind: location.KindLocal, Path: "/var/lib/repo"}, "/var/lib/repo"},
		{"/var/lib/../lib/repo", location.Location{Kind: location.KindLocal, Path: "/var/lib/repo"}, "/var/lib/repo"},
		{"local:/mnt/shared/repo", location.Location{Kind: location.KindLocal, Path: "/mnt/shared/repo"}, "/mnt/shared/repo"},
		{"file:///mnt/shared/repo", location.Location{Kind: location.KindLocal, Path: "/mnt/shared/repo"}, "/mnt/shared/repo"},
		{"file://localhost/mnt/repo", location.Location{Kind: location.KindLocal, Path: "/mnt/repo"}, "/mnt/repo"},
		{"s3://my-bucket", location.Location{Kind: location.KindS3, Bucket: "my-bucket"}, "s3://my-bucket"},
		{"s3://my-bucket/", location.Location{Kind: location.KindS3, Bucket: "my-bucket"}, "s3://my-bucket"},
		{"s3://my-bucket/clusterguard", location.Location{Kind: location.KindS3, Bucket: "my-bucket", Prefix: "clusterguard"}, "s3://my-bucket/clusterguard"},
		{"s3://my.bucket.1/a/b/c/", location.Location{Kind: location.KindS3, Bucket: "my.bucket.1", Prefix: "a/b/c"}, "s3://my.bucket.1/a/b/c"},
		{"s3://abc", location.Location{Kind: location.KindS3, Bucket: "abc"}, "s3://abc"},
	}
	for _, c := range ok {
		t.Run(c.in, func(t *testing.T) {
			got, err := location.Parse(c.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.in, err)
			}
			if got != c.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", c.in, got, c.want)
			}
			if got.String() != c.str {
				t.Fatalf("String() = %q, want %q", got.String(), c.str)
			}
			// The canonical form parses to the same location.
			again, err := location.Parse(got.String())
			if err != nil || again != got {
				t.Fatalf("Parse(String()) = %+v, %v", again, err)
			}
		})
	}

	bad := []struct {
		in string
		// every error must say what is wrong (mention) and show a valid form (example)
		mention, example string
	}{
		{"", "empty", "/var/lib/clusterguard/repo"},
		{"repo", "absolute", "/var/lib/clusterguard/repo"},
		{"./repo", "absolute", "/var/lib/clusterguard/repo"},
		{"local:repo", "absolute", "/var/lib/clusterguard/repo"},
		{" /var/repo", "whitespace", ""},
		{"/", "root", "/var/lib/clusterguard/repo"},
		{"file://server/share/repo", "host", "file:///mnt/shared/repo"},
		{"file:relative", "absolute", "/var/lib/clusterguard/repo"},
		{"s3:my-bucket", "s3://bucket", "s3://my-bucket/clusterguard"},
		{"s3://", "no bucket", "s3://my-bucket/clusterguard"},
		{"s3:///prefix", "no bucket", "s3://my-bucket/clusterguard"},
		{"s3://My_Bucket", "upper-case", "clusterguard-backups"},
		{"s3://my_bucket", "'_'", "clusterguard-backups"},
		{"s3://ab", "3 to 63", "clusterguard-backups"},
		{"s3://" + strings.Repeat("a", 64), "3 to 63", "clusterguard-backups"},
		{"s3://-bucket", "begin and end", "clusterguard-backups"},
		{"s3://bucket-", "begin and end", "clusterguard-backups"},
		{"s3://my..bucket", "adjacent", "clusterguard-backups"},
		{"s3://192.168.1.10", "IP address", "clusterguard-backups"},
		{"s3://xn--bucket", "reserved", "clusterguard-backups"},
		{"s3://minio.local:9000/bucket", "endpoint", "s3://my-bucket/clusterguard"},
		{"s3://bucket.s3.amazonaws.com/x", "endpoint", "s3://my-bucket/clusterguard"},
		{"s3://AKIDEXAMPLE:hunter2@bucket/x", "credentials", "s3://bucket[/prefix]"},
		{"s3://bucket/a//b", "empty segment", "backups/cluster-a"},
		{"s3://bucket/a/../b", `".."`, "backups/cluster-a"},
		{"s3://bucket/x?region=eu", "query", "s3://my-bucket/clusterguard"},
		{"https://s3.amazonaws.com/bucket", `"https"`, "s3://my-bucket/clusterguard"},
		{"gs://bucket", `"gs"`, "s3://my-bucket/clusterguard"},
	}
	for _, c := range bad {
		t.Run("bad "+c.in, func(t *testing.T) {
			got, err := location.Parse(c.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", c.in, got)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.mention) {
				t.Errorf("error %q does not mention %q", msg, c.mention)
			}
			if !strings.Contains(msg, c.example) {
				t.Errorf("error %q does not show the example %q", msg, c.example)
			}
			if strings.Contains(c.in, "hunter2") && strings.Contains(msg, "hunter2") {
				t.Errorf("error %q echoes the secret in the URL", msg)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		cfg     location.Config
		wantErr string
	}{
		{location.Config{URL: "/var/repo"}, ""},
		{location.Config{URL: "/var/repo", AccessKeyID: "ignored for local"}, ""},
		{location.Config{URL: "s3://bucket", Endpoint: "minio:9000", AccessKeyID: "a", SecretAccessKey: "b"}, ""},
		{location.Config{URL: "s3://bucket"}, ""}, // credentials from the environment
		{location.Config{URL: "s3://bucket", AccessKeyID: "a"}, "secret key is empty"},
		{location.Config{URL: "s3://bucket", SecretAccessKey: "b"}, "access key ID is empty"},
		{location.Config{URL: "s3://bucket", SessionToken: "t"}, "session token"},
		{location.Config{URL: "s3://bucket", Endpoint: "https://x", Insecure: true}, "one or the other"},
		{location.Config{URL: "relative"}, "absolute"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want ok", c.cfg, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("Validate(%+v) = %v, want an error mentioning %q", c.cfg, err, c.wantErr)
		}
	}
}

func TestOpenLocal(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	if _, err := location.Open(ctx, location.Config{URL: dir}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Open of a missing directory = %v, want 'does not exist'", err)
	}
	b, err := location.Create(ctx, location.Config{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	h := repository.Handle{Type: repository.ConfigFile, Name: "config"}
	if err := b.Save(ctx, h, []byte("cfg")); err != nil {
		t.Fatal(err)
	}
	b2, err := location.Open(ctx, location.Config{URL: "local:" + dir})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b2.Load(ctx, h, 0, 0); err != nil || string(got) != "cfg" {
		t.Fatalf("Load through a second Open = %q, %v", got, err)
	}
	if !strings.Contains(b2.Location(), dir) {
		t.Errorf("Location() = %q, want it to name %s", b2.Location(), dir)
	}
}

func TestOpenS3OnMinIO(t *testing.T) {
	ctx := context.Background()
	srv := minio.Start(t)
	cfg := location.Config{
		URL:             "s3://fresh-bucket/team-a/prod",
		Endpoint:        "http://" + srv.Endpoint,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
		PathStyle:       true,
	}
	if _, err := location.Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Open of a missing bucket = %v, want 'does not exist'", err)
	}
	b, err := location.Create(ctx, cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	h := repository.Handle{Type: repository.ConfigFile, Name: "config"}
	if err := b.Save(ctx, h, []byte("cfg")); err != nil {
		t.Fatal(err)
	}
	b2, err := location.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b2.Load(ctx, h, 0, 0); err != nil || string(got) != "cfg" {
		t.Fatalf("Load through a second Open = %q, %v", got, err)
	}
	loc := b2.Location()
	if !strings.Contains(loc, "fresh-bucket/team-a/prod") || strings.Contains(loc, srv.SecretKey) {
		t.Errorf("Location() = %q, want the bucket and prefix and no secret", loc)
	}
}
