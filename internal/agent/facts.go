package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Linux sources of node facts; variables so tests can point them at fixtures.
var (
	loadavgPath = "/proc/loadavg"
	meminfoPath = "/proc/meminfo"
)

// readLoad1 returns the one-minute load average.
func readLoad1(path string) (float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0, fmt.Errorf("%s is empty", path)
	}
	load, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return load, nil
}

// readMeminfo returns MemAvailable and MemTotal in bytes.
func readMeminfo(path string) (available, total uint64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	var haveAvail, haveTotal bool
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "MemAvailable" && key != "MemTotal") {
			continue
		}
		fields := strings.Fields(rest) // "16308112 kB"
		if len(fields) == 0 {
			return 0, 0, fmt.Errorf("%s: %s has no value", path, key)
		}
		n, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %s: %w", path, key, err)
		}
		if len(fields) > 1 && fields[1] == "kB" {
			n *= 1024
		}
		if key == "MemAvailable" {
			available, haveAvail = n, true
		} else {
			total, haveTotal = n, true
		}
	}
	if !haveAvail || !haveTotal {
		return available, total, fmt.Errorf("%s lacks MemAvailable or MemTotal", path)
	}
	return available, total, sc.Err()
}
