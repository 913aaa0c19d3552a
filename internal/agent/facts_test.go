package agent

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestReadLoadAndMeminfo(t *testing.T) {
	dir := t.TempDir()
	loadavg := filepath.Join(dir, "loadavg")
	writeFile(t, loadavg, "1.25 0.80 0.40 2/345 6789\n")
	if got, err := readLoad1(loadavg); err != nil || got != 1.25 {
		t.Errorf("readLoad1 = %v, %v", got, err)
	}
	writeFile(t, loadavg, "")
	if _, err := readLoad1(loadavg); err == nil {
		t.Error("empty loadavg accepted")
	}

	meminfo := filepath.Join(dir, "meminfo")
	writeFile(t, meminfo, "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\nBuffers: 1 kB\n")
	avail, total, err := readMeminfo(meminfo)
	if err != nil || avail != 8000000*1024 || total != 16000000*1024 {
		t.Errorf("readMeminfo = %d, %d, %v", avail, total, err)
	}
	writeFile(t, meminfo, "MemTotal: 100 kB\n")
	if _, _, err := readMeminfo(meminfo); err == nil || !strings.Contains(err.Error(), "MemAvailable") {
		t.Errorf("meminfo without MemAvailable: %v", err)
	}
}

func TestEnsureVolumeIDConcurrentAgents(t *testing.T) {
	volume := t.TempDir()
	const agents = 8
	ids := make([]string, agents)
	errs := make([]error, agents)
	var wg sync.WaitGroup
	for i := range agents {
		wg.Go(func() { ids[i], errs[i] = EnsureVolumeID(volume) })
	}
	wg.Wait()
	for i := range agents {
		if errs[i] != nil || ids[i] != ids[0] || len(ids[0]) != 32 {
			t.Fatalf("agent %d got %q, %v; agent 0 got %q", i, ids[i], errs[i], ids[0])
		}
	}
	again, err := EnsureVolumeID(volume)
	if err != nil || again != ids[0] {
		t.Errorf("second start got %q, %v; want the existing %q", again, err, ids[0])
	}
	entries, _ := filepath.Glob(filepath.Join(volume, MetadataDir, ".volume-id.tmp-*"))
	if len(entries) != 0 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestVolumeIDGarbageIsAnError(t *testing.T) {
	volume := t.TempDir()
	if _, err := EnsureVolumeID(volume); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(volume, VolumeIDFile), "not-an-id\n")
	if _, err := EnsureVolumeID(volume); err == nil || !strings.Contains(err.Error(), "32 hex digits") {
		t.Errorf("garbage volume id: %v", err)
	}
}
