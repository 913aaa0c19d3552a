package sqlstore

import "testing"

func TestRewrite(t *testing.T) {
	pg := New(nil, "db", Dialect{Name: "postgres", NumberedPlaceholders: true, ByteOrder: `"C"`, ForUpdate: "FOR UPDATE", ForKeyShare: "FOR KEY SHARE"})
	lite := New(nil, "file", Dialect{Name: "sqlite", ByteOrder: "BINARY"})
	cases := []struct{ in, pg, lite string }{
		{`SELECT a FROM t WHERE x = ? AND y = ?`, `SELECT a FROM t WHERE x = $1 AND y = $2`, `SELECT a FROM t WHERE x = ? AND y = ?`},
		{`SELECT 1 FROM runs WHERE id = ? {for_key_share}`, `SELECT 1 FROM runs WHERE id = $1 FOR KEY SHARE`, `SELECT 1 FROM runs WHERE id = ? `},
		{`SELECT e FROM l WHERE c = ? {for_update}`, `SELECT e FROM l WHERE c = $1 FOR UPDATE`, `SELECT e FROM l WHERE c = ? `},
		{`ORDER BY name COLLATE {bytes} LIMIT ?`, `ORDER BY name COLLATE "C" LIMIT $1`, `ORDER BY name COLLATE BINARY LIMIT ?`},
		{`VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, `VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, `VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
	}
	for _, c := range cases {
		if got := pg.rewrite(c.in); got != c.pg {
			t.Errorf("postgres rewrite(%q) = %q, want %q", c.in, got, c.pg)
		}
		if got := lite.rewrite(c.in); got != c.lite {
			t.Errorf("sqlite rewrite(%q) = %q, want %q", c.in, got, c.lite)
		}
	}
	if pg.Name() != "postgres catalog db" {
		t.Errorf("name %q", pg.Name())
	}
}
