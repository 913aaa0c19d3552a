package minio_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/minio"
)

func TestStartServesS3AndStopsOnCleanup(t *testing.T) {
	var srv *minio.Server
	t.Run("running", func(t *testing.T) {
		srv = minio.Start(t)
		if !strings.HasPrefix(srv.Endpoint, "127.0.0.1:") {
			t.Errorf("Endpoint %q is not on 127.0.0.1", srv.Endpoint)
		}
		if srv.AccessKey == "" || len(srv.SecretKey) < 8 {
			t.Errorf("credentials not set: %q / %d chars", srv.AccessKey, len(srv.SecretKey))
		}
		b1, b2 := srv.NewBucket(t), srv.NewBucket(t)
		if b1 == b2 {
			t.Fatalf("NewBucket returned %q twice", b1)
		}
		ok, err := srv.Client().BucketExists(context.Background(), b1)
		if err != nil || !ok {
			t.Fatalf("BucketExists(%s) = %v, %v", b1, ok, err)
		}
	})
	// The subtest's cleanup killed the server: its port no longer answers.
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(srv.URL() + "/minio/health/live")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("MinIO at %s still answers (%s) after its test ended", srv.Endpoint, resp.Status)
	}
}

// recordingTB captures a Fatalf instead of failing the real test.
type recordingTB struct {
	testing.TB
	fatal string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingBinaryFailsWithInstructions(t *testing.T) {
	t.Setenv(minio.BinEnv, filepath.Join(t.TempDir(), "no-such-minio"))
	rec := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		minio.Start(rec)
		t.Error("Start returned without failing although the binary is missing")
	}()
	<-done
	if !strings.Contains(rec.fatal, "make minio") {
		t.Fatalf("failure message %q does not tell the user to run `make minio`", rec.fatal)
	}
}
