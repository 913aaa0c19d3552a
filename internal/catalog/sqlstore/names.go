package sqlstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
)

// Lists of names (workloads, nodes) are stored as JSON arrays in TEXT
// columns: they are always read and written whole.

func encodeNames(xs []string) string {
	if len(xs) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(xs) // a []string always encodes
	return string(b)
}

// decodeNames returns nil for an empty list, as the other catalogs do.
func decodeNames(column, s string) ([]string, error) {
	var xs []string
	if err := json.Unmarshal([]byte(s), &xs); err != nil {
		return nil, fmt.Errorf("column %s holds %q, not a JSON list of names: %w", column, s, err)
	}
	if len(xs) == 0 {
		return nil, nil
	}
	return xs, nil
}

// rowsAffected returns the number of rows a statement changed.
func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
