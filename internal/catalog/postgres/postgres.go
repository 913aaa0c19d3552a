// Package postgres is the catalog in a PostgreSQL database, for teams and
// high availability: several engines (provider runs, engine daemons on
// different machines) share one catalog, and PostgreSQL's row locks keep
// their writes consistent. It uses pgx through database/sql.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/migrate"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

var migrations, migrationsErr = migrate.Load(migrationFiles, "migrations")

// migrationLockKey is the transaction-scoped advisory lock that serialises
// migrators sharing a database: two engines upgrading at once take turns,
// and the second finds the work done.
const migrationLockKey = 0x636c757374657267 // "clusterg"

var dialect = migrate.Dialect{
	Name:        "PostgreSQL",
	Lock:        "SELECT pg_advisory_xact_lock(" + strconv.FormatInt(migrationLockKey, 10) + ")",
	Placeholder: func(n int) string { return "$" + strconv.Itoa(n) },
}

// Options tune Open. The zero value is ready to use.
type Options struct {
	// MaxOpenConns bounds this process's connections. Default 8.
	MaxOpenConns int
	// Now stamps applied migrations (diagnostics only). Default time.Now.
	Now func() time.Time
}

// queries is how the shared catalog code speaks to PostgreSQL. Writes run
// READ COMMITTED and serialise on the row locks their first statement
// takes; reads run in one REPEATABLE READ snapshot.
var queries = sqlstore.Dialect{
	Name:                 "postgres",
	NumberedPlaceholders: true,
	ByteOrder:            `"C"`,
	ForUpdate:            "FOR UPDATE",
	ForKeyShare:          "FOR KEY SHARE",
	ReadTx:               &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
}

// Store is the PostgreSQL catalog, safe for concurrent use. Its methods
// are sqlstore.Store's.
type Store struct {
	*sqlstore.Store
	db *sql.DB
}

// LatestSchemaVersion is the schema version this binary creates and expects.
func LatestSchemaVersion() int { return len(migrations) }

// Open connects to the database named by url (a libpq URL or key=value
// string, e.g. postgres://user@host:5432/clusterguard; without sslmode it
// uses DefaultSSLMode, verify-full), checks it answers,
// and migrates it to the latest schema. It refuses a catalog written by a
// newer release (see migrate.NewerSchemaError).
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	if migrationsErr != nil {
		return nil, fmt.Errorf("postgres catalog: embedded migrations are invalid: %w", migrationsErr)
	}
	cfg, err := pgx.ParseConfig(withDefaultSSLMode(url))
	if err != nil {
		// pgx's message never repeats the password.
		return nil, fmt.Errorf("postgres catalog: parse connection URL: %w", err)
	}
	label := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) + "/" + cfg.Database
	if o.MaxOpenConns == 0 {
		o.MaxOpenConns = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(o.MaxOpenConns)
	db.SetMaxIdleConns(o.MaxOpenConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{Store: sqlstore.New(db, label, queries), db: db}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres catalog %s: connect: %w (check the server is running and reachable, and the URL, user, password and sslmode: without one in the URL it is verify-full, which needs TLS on the server and its CA in the client's trust store or sslrootcert)", label, err)
	}
	if _, err := migrate.Run(ctx, db, dialect, migrations, o.Now); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres catalog %s: %w", label, err)
	}
	return s, nil
}

// SchemaVersion reads the schema version recorded in the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	v, err := migrate.Version(ctx, s.db)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", s.Name(), err)
	}
	return v, nil
}
