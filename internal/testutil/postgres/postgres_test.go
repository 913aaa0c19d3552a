package postgres_test

import (
	"database/sql"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/testutil/postgres"
)

func TestStart(t *testing.T) {
	s := postgres.Start(t)
	a, b := s.CreateDatabase(t), s.CreateDatabase(t)
	if a == b {
		t.Fatalf("CreateDatabase returned %s twice", a)
	}
	db, err := sql.Open("pgx", a)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version, dbname string
	if err := db.QueryRow("SELECT version(), current_database()").Scan(&version, &dbname); err != nil {
		t.Fatalf("query the test server: %v", err)
	}
	if !strings.HasPrefix(version, "PostgreSQL") || !strings.HasSuffix(a, "/"+dbname+"?sslmode=disable") {
		t.Errorf("version %q, database %q from URL %s", version, dbname, a)
	}
	if !strings.HasPrefix(s.URL("x"), "postgres://postgres@127.0.0.1:") {
		t.Errorf("URL = %s, want a 127.0.0.1 URL", s.URL("x"))
	}
}
