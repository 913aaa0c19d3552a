package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	miniogo "github.com/minio/minio-go/v7"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/s3"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backendtest"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/minio"
)

func config(srv *minio.Server, bucket string) s3.Config {
	return s3.Config{
		Endpoint:        srv.Endpoint,
		Bucket:          bucket,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
		Insecure:        true,
		PathStyle:       true,
		MaxRetries:      2,
	}
}

func open(t *testing.T, cfg s3.Config) *s3.Backend {
	t.Helper()
	b, err := s3.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformanceOnMinIO(t *testing.T) {
	srv := minio.Start(t)
	secrets := backendtest.ForbidInLocation(srv.SecretKey, srv.AccessKey)
	t.Run("bucket root", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T) repository.Backend {
			return open(t, config(srv, srv.NewBucket(t)))
		}, secrets)
	})
	t.Run("under a prefix", func(t *testing.T) {
		// Two repositories in one bucket must not see each other; the
		// neighbour's objects would show up in List if prefixes leaked.
		backendtest.Run(t, func(t *testing.T) repository.Backend {
			bucket := srv.NewBucket(t)
			neighbour := config(srv, bucket)
			neighbour.Prefix = "repos/other"
			nb := open(t, neighbour)
			for _, ft := range backendtest.AllTypes {
				name := backendtest.ID("neighbour")
				if ft == repository.ConfigFile {
					name = "config"
				}
				if err := nb.Save(context.Background(), repository.Handle{Type: ft, Name: name}, []byte("not yours")); err != nil {
					t.Fatal(err)
				}
			}
			cfg := config(srv, bucket)
			cfg.Prefix = "/repos/mine/"
			return open(t, cfg)
		}, secrets)
	})
}

func TestKeyLayout(t *testing.T) {
	srv := minio.Start(t)
	bucket := srv.NewBucket(t)
	cfg := config(srv, bucket)
	cfg.Prefix = "cg/prod"
	b := open(t, cfg)
	ctx := context.Background()
	id := backendtest.ID("layout")
	want := map[repository.Handle]string{
		{Type: repository.ConfigFile, Name: "config"}: "cg/prod/config",
		{Type: repository.KeyFile, Name: id}:          "cg/prod/keys/" + id,
		{Type: repository.PackFile, Name: id}:         "cg/prod/data/" + id[:2] + "/" + id,
		{Type: repository.IndexFile, Name: id}:        "cg/prod/index/" + id,
		{Type: repository.SnapshotFile, Name: id}:     "cg/prod/snapshots/" + id,
		{Type: repository.LockFile, Name: id}:         "cg/prod/locks/" + id,
	}
	for h, key := range want {
		if err := b.Save(ctx, h, []byte(key)); err != nil {
			t.Fatal(err)
		}
		obj, err := srv.Client().GetObject(ctx, bucket, key, miniogo.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		if err != nil || string(got) != key {
			t.Errorf("%s/%s not stored at key %s: %q, %v", h.Type, h.Name, key, got, err)
		}
	}
	// Stray keys that other tools create are not objects: a folder marker, a
	// pack in the wrong fan-out directory, a nested key under index/.
	for _, k := range []string{"cg/prod/data/", "cg/prod/data/zz/" + id, "cg/prod/index/sub/" + id, "cg/prod/keys/"} {
		if _, err := srv.Client().PutObject(ctx, bucket, k, bytes.NewReader(nil), 0, miniogo.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ft := range backendtest.AllTypes {
		names := backendtest.SortedNames(t, b, ft)
		wantName := id
		if ft == repository.ConfigFile {
			wantName = "config"
		}
		if len(names) != 1 || names[0] != wantName {
			t.Errorf("List %s = %v, want [%s]", ft, names, wantName)
		}
	}
	if loc := b.Location(); loc != "s3:http://"+srv.Endpoint+"/"+bucket+"/cg/prod" {
		t.Errorf("Location = %q", loc)
	}
}

func TestOpenErrorsSayWhatToCheck(t *testing.T) {
	srv := minio.Start(t)
	ctx := context.Background()

	missing := config(srv, "no-such-bucket")
	_, err := s3.Open(ctx, missing)
	if err == nil || !strings.Contains(err.Error(), `"no-such-bucket" does not exist`) {
		t.Errorf("Open of a missing bucket = %v, want an error naming the bucket", err)
	}

	missing.CreateBucket = true
	b, err := s3.Open(ctx, missing)
	if err != nil {
		t.Fatalf("Open with CreateBucket: %v", err)
	}
	if ok, err := srv.Client().BucketExists(ctx, "no-such-bucket"); err != nil || !ok {
		t.Fatalf("CreateBucket did not create the bucket: %v %v", ok, err)
	}
	if _, err := s3.Open(ctx, missing); err != nil {
		t.Fatalf("Open with CreateBucket of an existing bucket: %v", err)
	}
	if _, err := b.Stat(ctx, repository.Handle{Type: repository.ConfigFile, Name: "config"}); !errors.Is(err, repository.ErrNotExist) {
		t.Errorf("Stat in a new bucket = %v, want ErrNotExist", err)
	}

	wrongSecret := config(srv, srv.NewBucket(t))
	wrongSecret.SecretAccessKey = "not-the-secret-key"
	_, err = s3.Open(ctx, wrongSecret)
	if err == nil || !strings.Contains(err.Error(), "check the access key") {
		t.Errorf("Open with a wrong secret = %v, want a hint to check credentials", err)
	}
	if err != nil && strings.Contains(err.Error(), "not-the-secret-key") {
		t.Errorf("error leaks the secret: %v", err)
	}

	unreachable := config(srv, "some-bucket")
	unreachable.Endpoint = "127.0.0.1:1" // nothing listens on port 1
	unreachable.MaxRetries = 1
	_, err = s3.Open(ctx, unreachable)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the endpoint") {
		t.Errorf("Open of an unreachable endpoint = %v, want a hint to check the endpoint", err)
	}

	tlsToPlain := config(srv, "some-bucket")
	tlsToPlain.Insecure = false // MinIO here speaks plain http
	tlsToPlain.MaxRetries = 1
	_, err = s3.Open(ctx, tlsToPlain)
	if err == nil || !strings.Contains(err.Error(), "https or plain http") {
		t.Errorf("Open with https against a plain-http server = %v, want a hint about https vs http", err)
	}
}

func TestConfigValidation(t *testing.T) {
	ctx := context.Background()
	base := s3.Config{Endpoint: "127.0.0.1:1", Bucket: "bucket", AccessKeyID: "a", SecretAccessKey: "b", Insecure: true}
	cases := []struct {
		name    string
		mod     func(*s3.Config)
		wantErr string
	}{
		{"bad bucket", func(c *s3.Config) { c.Bucket = "Bad_Bucket" }, "bucket name"},
		{"bad prefix", func(c *s3.Config) { c.Prefix = "a/../b" }, "prefix"},
		{"endpoint with path", func(c *s3.Config) { c.Endpoint = "http://host:9000/bucket" }, "must not have a path"},
		{"endpoint with credentials", func(c *s3.Config) { c.Endpoint = "http://user:pw@host:9000" }, "must not contain credentials"},
		{"https and insecure", func(c *s3.Config) { c.Endpoint = "https://host"; c.Insecure = true }, "one or the other"},
		{"odd scheme", func(c *s3.Config) { c.Endpoint = "ftp://host" }, "http:// or https://"},
		{"key without secret", func(c *s3.Config) { c.SecretAccessKey = "" }, "secret key is empty"},
		{"negative retries", func(c *s3.Config) { c.MaxRetries = -1 }, "negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			c.mod(&cfg)
			_, err := s3.Open(ctx, cfg)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Open = %v, want an error mentioning %q", err, c.wantErr)
			}
		})
	}
}

func TestCredentialsFromEnvironment(t *testing.T) {
	srv := minio.Start(t)
	bucket := srv.NewBucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	cfg := config(srv, bucket)
	cfg.AccessKeyID, cfg.SecretAccessKey = "", ""
	b := open(t, cfg)
	if err := b.Save(context.Background(), repository.Handle{Type: repository.LockFile, Name: "abcd"}, []byte("x")); err != nil {
		t.Fatalf("Save with credentials from the environment: %v", err)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	_, err := s3.Open(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("Open without any credentials = %v, want an error naming AWS_ACCESS_KEY_ID", err)
	}
}

// flakyTransport fails the first failures requests matching match with 503,
// and truncates the body of the first truncate GET responses.
type flakyTransport struct {
	next     http.RoundTripper
	match    func(*http.Request) bool
	failures atomic.Int32
	truncate atomic.Int32
	seen     atomic.Int32
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !f.match(r) {
		return f.next.RoundTrip(r)
	}
	f.seen.Add(1)
	if f.failures.Add(-1) >= 0 {
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		return &http.Response{
			StatusCode: http.StatusServiceUnavailable,
			Status:     "503 Service Unavailable",
			Header:     http.Header{"Content-Type": {"application/xml"}},
			Body:       io.NopCloser(strings.NewReader(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)),
			Request:    r,
		}, nil
	}
	resp, err := f.next.RoundTrip(r)
	if err == nil && r.Method == http.MethodGet && f.truncate.Add(-1) >= 0 {
		resp.Body = &brokenBody{r: io.LimitReader(resp.Body, 10), c: resp.Body}
	}
	return resp, err
}

type brokenBody struct {
	r io.Reader
	c io.Closer
}

func (b *brokenBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset by peer (injected)")
	}
	return n, err
}
func (b *brokenBody) Close() error { return b.c.Close() }

func TestTransientErrorsAreRetried(t *testing.T) {
	srv := minio.Start(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	base, err := miniogo.DefaultTransport(false)
	if err != nil {
		t.Fatal(err)
	}
	objectRequests := func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/snapshots/") }
	ft := &flakyTransport{next: base, match: objectRequests}
	cfg := config(srv, bucket)
	cfg.Transport = ft
	cfg.MaxRetries = 4
	b := open(t, cfg)
	h := repository.Handle{Type: repository.SnapshotFile, Name: backendtest.ID("retry")}
	data := backendtest.Data("retry", 100_000)

	ft.failures.Store(2)
	if err := b.Save(ctx, h, data); err != nil {
		t.Fatalf("Save with two transient 503s and MaxRetries 4: %v", err)
	}
	if got := ft.seen.Load(); got != 3 {
		t.Errorf("Save took %d requests, want 3 (two failures, one success)", got)
	}

	// A body cut off mid-stream is retried by Load itself.
	ft.truncate.Store(1)
	got, err := b.Load(ctx, h, 0, 0)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Load after a body broken mid-stream = %d bytes, %v", len(got), err)
	}

	// With retries disabled the first 503 is the answer, and it names the key.
	cfg.MaxRetries = 1
	noRetry := open(t, cfg)
	ft.failures.Store(1)
	err = noRetry.Save(ctx, h, data)
	if err == nil || !strings.Contains(err.Error(), h.Name) {
		t.Fatalf("Save with a 503 and no retries = %v, want an error naming the object", err)
	}
}
