package postgres

import "testing"

func TestWithDefaultSSLMode(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	for in, want := range map[string]string{
		"postgres://cg@db:5432/cat":                "postgres://cg@db:5432/cat?sslmode=verify-full",
		"postgresql://cg@db/cat?connect_timeout=5": "postgresql://cg@db/cat?connect_timeout=5&sslmode=verify-full",
		"postgres://cg@db/cat?sslmode=disable":     "postgres://cg@db/cat?sslmode=disable",
		"postgres://cg@db/cat?sslmode=require":     "postgres://cg@db/cat?sslmode=require",
		"host=db user=cg dbname=cat":               "host=db user=cg dbname=cat sslmode=verify-full",
		"host=db sslmode=prefer dbname=cat":        "host=db sslmode=prefer dbname=cat",
		"":                                         "sslmode=verify-full",
	} {
		if got := withDefaultSSLMode(in); got != want {
			t.Errorf("withDefaultSSLMode(%q) = %q, want %q", in, got, want)
		}
	}
	t.Setenv("PGSSLMODE", "disable")
	if got := withDefaultSSLMode("postgres://cg@db/cat"); got != "postgres://cg@db/cat" {
		t.Errorf("with PGSSLMODE set: %q, want the URL unchanged", got)
	}
}
