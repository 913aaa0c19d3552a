package s3

import (
	"fmt"
	"net"
	"strings"
)

// ValidateBucketName checks name against the S3 bucket naming rules and says
// which rule it breaks, with an example of a valid name.
func ValidateBucketName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("bucket name %q is invalid: %s (e.g. \"clusterguard-backups\")", name, why)
	}
	switch {
	case name == "":
		return bad("it is empty")
	case len(name) < 3 || len(name) > 63:
		return bad(fmt.Sprintf("it is %d characters long; bucket names are 3 to 63 characters", len(name)))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			if r >= 'A' && r <= 'Z' {
				return bad("it has upper-case letters; bucket names are lower case")
			}
			return bad(fmt.Sprintf("it contains %q; only lower-case letters, digits, '-' and '.' are allowed", r))
		}
	}
	isAlnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	switch {
	case !isAlnum(name[0]) || !isAlnum(name[len(name)-1]):
		return bad("it must begin and end with a letter or digit")
	case strings.Contains(name, ".."), strings.Contains(name, ".-"), strings.Contains(name, "-."):
		return bad("dots must not be adjacent to each other or to hyphens")
	case net.ParseIP(name) != nil:
		return bad("it looks like an IP address")
	case strings.HasPrefix(name, "xn--"), strings.HasPrefix(name, "sthree-"):
		return bad("the prefixes xn-- and sthree- are reserved")
	case strings.HasSuffix(name, "-s3alias"), strings.HasSuffix(name, "--ol-s3"):
		return bad("the suffixes -s3alias and --ol-s3 are reserved")
	}
	return nil
}

// CleanPrefix normalises a key prefix to "" or "a/b/" and rejects empty,
// "." or ".." segments (which S3 would accept but no sync tool round-trips).
func CleanPrefix(prefix string) (string, error) {
	p := strings.Trim(prefix, "/")
	if p == "" {
		return "", nil
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return "", fmt.Errorf("key prefix %q has an empty segment (\"//\"); use e.g. \"backups/cluster-a\"", prefix)
		case ".", "..":
			return "", fmt.Errorf("key prefix %q has a %q segment; use e.g. \"backups/cluster-a\"", prefix, seg)
		}
		if strings.ContainsAny(seg, "\\\x00") {
			return "", fmt.Errorf("key prefix %q contains a backslash or NUL; use e.g. \"backups/cluster-a\"", prefix)
		}
	}
	return p + "/", nil
}
