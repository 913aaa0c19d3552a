package location_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/location"
)

// FuzzParse: location.Parse never panics; what it accepts is canonical (its
// String parses back to the same Location), a local path is absolute and
// clean, an S3 location has a bucket and a prefix without empty, "." or
// ".." segments; what it refuses it explains without echoing credentials.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"/var/lib/repo", "/var/lib/../lib/repo/", "local:/mnt/shared/repo", "file:///mnt/repo", "file://localhost/mnt/repo",
		"file://host/x", "file:///x?q", "s3://my-bucket", "s3://my-bucket/a/b/c/", "s3://b/../x", "s3://b//x", "s3://b/./x",
		"s3://user:secret@bucket/p", "s3://host:9000/b", "s3:bucket", "http://x", "relative/path", "/", "", " /x", "/x\x00y",
		"s3://UPPER", "s3://" + strings.Repeat("a", 70), "file:%zz",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		loc, err := location.Parse(raw)
		if err != nil {
			// User information in a URL may be a credential: never echoed.
			if _, rest, ok := strings.Cut(raw, "://"); ok {
				end := strings.IndexAny(rest, "/?#")
				if end < 0 {
					end = len(rest)
				}
				if at := strings.LastIndex(rest[:end], "@"); at >= 4 && strings.Contains(strings.ReplaceAll(err.Error(), "REDACTED@", ""), rest[:at]+"@") {
					t.Fatalf("error echoes the URL's user information %q: %v", rest[:at], err)
				}
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		switch loc.Kind {
		case location.KindLocal:
			if !filepath.IsAbs(loc.Path) || filepath.Clean(loc.Path) != loc.Path || loc.Path == "/" {
				t.Fatalf("Parse(%q) accepted local path %q: not absolute and clean", raw, loc.Path)
			}
		case location.KindS3:
			if loc.Bucket == "" {
				t.Fatalf("Parse(%q) accepted an empty bucket", raw)
			}
			if loc.Prefix != "" {
				for _, seg := range strings.Split(loc.Prefix, "/") {
					if seg == "" || seg == "." || seg == ".." {
						t.Fatalf("Parse(%q) accepted prefix %q with segment %q", raw, loc.Prefix, seg)
					}
				}
			}
		default:
			t.Fatalf("Parse(%q) returned kind %q", raw, loc.Kind)
		}
		again, err := location.Parse(loc.String())
		if err != nil || again != loc {
			t.Fatalf("Parse(%q) = %+v, but its String %q parses to %+v, %v", raw, loc, loc.String(), again, err)
		}
	})
}
