package postgres

import (
	"net/url"
	"os"
	"strings"
)

// DefaultSSLMode is the TLS mode of a connection whose URL (and the
// PGSSLMODE environment variable) name none: the catalog holds the
// cluster's state and sealed secrets, so its connection is encrypted and
// the server's certificate and host name are verified. libpq's own default
// (prefer) falls back to plaintext and verifies nothing. A server on a
// trusted loopback without TLS needs sslmode=disable in its URL.
const DefaultSSLMode = "verify-full"

// IsURL reports whether a catalog setting names a PostgreSQL server
// (a libpq URL) rather than a SQLite file.
func IsURL(where string) bool {
	return strings.HasPrefix(where, "postgres://") || strings.HasPrefix(where, "postgresql://")
}

// withDefaultSSLMode adds sslmode=DefaultSSLMode to a libpq URL or
// key=value string that sets no sslmode, unless PGSSLMODE does.
func withDefaultSSLMode(dsn string) string {
	if os.Getenv("PGSSLMODE") != "" {
		return dsn
	}
	if IsURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn // pgx reports the parse error
		}
		q := u.Query()
		if q.Get("sslmode") != "" {
			return dsn
		}
		q.Set("sslmode", DefaultSSLMode)
		u.RawQuery = q.Encode()
		return u.String()
	}
	for _, f := range strings.Fields(dsn) {
		if strings.HasPrefix(f, "sslmode=") {
			return dsn
		}
	}
	if strings.TrimSpace(dsn) == "" {
		return "sslmode=" + DefaultSSLMode
	}
	return dsn + " sslmode=" + DefaultSSLMode
}
