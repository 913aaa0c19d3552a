package testworkload

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLastSeq(t *testing.T) {
	cases := map[string]struct {
		content string
		want    int64
	}{
		"missing":        {"", 0},
		"complete":       {"seq=1 node=a workload=w at=2024-01-01T00:00:00Z\nseq=2 node=a workload=w at=2024-01-01T00:00:01Z\n", 2},
		"cut last line":  {"seq=1 node=a workload=w at=2024-01-01T00:00:00Z\nseq=2 node=a workl", 1},
		"no final break": {"seq=5 node=a workload=w at=2024-01-01T00:00:00Z", 0},
		"big file": {strings.Repeat("seq=1 node=a workload=w at=2024-01-01T00:00:00Z\n", 5000) +
			"seq=5001 node=b workload=w at=2024-01-01T00:00:00Z\n", 5001},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), RecordsFile)
			if name != "missing" {
				if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := lastSeq(path)
			if err != nil || got != tc.want {
				t.Fatalf("lastSeq = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
