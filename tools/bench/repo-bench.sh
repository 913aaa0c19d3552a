#!/usr/bin/env bash
# Side-by-side benchmark of the clusterguard repository against restic and
# borg on one generated dataset, on one disk, in one run (issue 3).
#
# For each tool: init, initial backup, unchanged re-backup, backup after a 1%
# change (clusterguard with changed-range hints), backup after another 1%
# change with no hints for anyone (clusterguard compares the image's blocks
# with the parent's), full restore, full verify
# (restic check --read-data, borg check --verify-data). Every step runs under
# /usr/bin/time -v (wall, user+sys CPU, peak RSS); the repository size is du -sb
# after the step. The phases are interleaved (all tools do a step before any
# does the next) so all three see the same data before and after the change.
#
# Usage: tools/bench/repo-bench.sh            (or: make bench)
# Environment:
#   CLUSTERGUARD_BIN  use this binary instead of building one from the checkout
#   BENCH_DIR         work directory (default: a new temp dir under build/, i.e.
#                     on the same disk as the checkout); removed afterwards
#                     unless BENCH_KEEP=1
#   BENCH_MARKDOWN    where to write the Markdown table (default build/bench-results.md)
#   BENCH_SEED        dataset seed (default 1)
#   BENCH_ROUNDS      how many times to run the whole sequence (default 3)
#   BENCH_IMAGE_MIB, BENCH_SMALL_MIB  dataset sizes (default 768 and 256: 1 GiB;
#                     smaller only for a quick smoke run of the script)
#   BENCH_TOOLS       subset of "clusterguard restic borg" (default all three)
#   CLUSTERGUARD_BASE_BIN  also run this (older) binary as tool
#                     "clusterguard-base", for before/after figures in one run
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SEED="${BENCH_SEED:-1}"
ROUNDS="${BENCH_ROUNDS:-3}"
IMAGE_MIB="${BENCH_IMAGE_MIB:-768}"
SMALL_MIB="${BENCH_SMALL_MIB:-256}"
TOOLS="${BENCH_TOOLS:-clusterguard restic borg}"
if [[ -n "${CLUSTERGUARD_BASE_BIN:-}" ]]; then
	[[ -x "$CLUSTERGUARD_BASE_BIN" ]] || { echo "CLUSTERGUARD_BASE_BIN=$CLUSTERGUARD_BASE_BIN is not an executable" >&2; exit 1; }
	TOOLS="clusterguard-base $TOOLS"
fi
MARKDOWN="${BENCH_MARKDOWN:-$repo_root/build/bench-results.md}"
PASSWORD="bench-password-not-secret"
BORG_COMPRESSION="zstd,3"
BORG_ENCRYPTION="repokey"

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- dependencies -----------------------------------------------------------
install_missing() {
	local pkgs=()
	command -v restic >/dev/null || pkgs+=(restic)
	command -v borg >/dev/null || pkgs+=(borgbackup)
	[[ -x /usr/bin/time ]] || pkgs+=(time)
	command -v go >/dev/null || die "go is not on PATH (needed to build the binary and the dataset generator)"
	((${#pkgs[@]} == 0)) && return
	[[ $(id -u) == 0 ]] || die "missing ${pkgs[*]}; install them (apt-get install ${pkgs[*]}) or run as root"
	log "installing ${pkgs[*]} with apt-get"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}
install_missing

# --- work directory -----------------------------------------------------------
mkdir -p "$repo_root/build"
if [[ -n "${BENCH_DIR:-}" ]]; then
	WORK="$BENCH_DIR"
	mkdir -p "$WORK"
else
	WORK="$(mktemp -d "$repo_root/build/bench.XXXXXX")"
fi
cleanup() {
	if [[ "${BENCH_KEEP:-0}" != 1 ]]; then
		rm -rf "$WORK"
	else
		log "kept $WORK"
	fi
}
trap cleanup EXIT
DATA="$WORK/data"
RANGES="$WORK/changed-ranges.json"
RESULTS="$WORK/results.tsv"
mkdir -p "$WORK/bin"
: >"$RESULTS"

# --- binaries -----------------------------------------------------------------
if [[ -n "${CLUSTERGUARD_BIN:-}" ]]; then
	CG="$CLUSTERGUARD_BIN"
	[[ -x "$CG" ]] || die "CLUSTERGUARD_BIN=$CG is not an executable"
else
	log "building terraform-provider-clusterguard"
	(cd "$repo_root" && CGO_ENABLED=0 go build -trimpath -o "$WORK/bin/clusterguard" .) ||
		die "go build failed; fix the build or set CLUSTERGUARD_BIN to a built binary"
	CG="$WORK/bin/clusterguard"
fi
(cd "$repo_root" && go build -o "$WORK/bin/gendata" ./tools/bench/gendata)
GENDATA="$WORK/bin/gendata"

# --- page cache ---------------------------------------------------------------
# Dropping the page cache before each step makes every tool read from disk.
# It needs root and a writable /proc/sys (not in every container).
if sync && (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
	CACHE_NOTE="page cache dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every step"
	drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
else
	CACHE_NOTE="page cache NOT dropped (not permitted here): reads may come from cache, equally for all tools"
	drop_caches() { sync; }
fi
log "$CACHE_NOTE"

# --- measuring ----------------------------------------------------------------
export CLUSTERGUARD_PASSWORD="$PASSWORD" RESTIC_PASSWORD="$PASSWORD" BORG_PASSPHRASE="$PASSWORD"
export RESTIC_CACHE_DIR="$WORK/cache/restic" BORG_BASE_DIR="$WORK/cache/borg" XDG_CACHE_HOME="$WORK/cache/xdg"
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=no

repo_of() { echo "$WORK/repos/$1"; }

# measure TOOL STEP DIR CMD...: runs CMD in DIR under /usr/bin/time -v and
# appends one TSV line: round tool step wall_s cpu_s rss_kib repo_bytes.
measure() {
	local tool=$1 step=$2 dir=$3
	shift 3
	local tf="$WORK/logs/$tool-$step.time" out="$WORK/logs/$tool-$step.log"
	drop_caches
	log "$tool: $step"
	if ! (cd "$dir" && /usr/bin/time -v -o "$tf" "$@") >"$out" 2>&1; then
		log "$tool $step failed: $*"
		tail -n 40 "$out" >&2
		[[ -f "$tf" ]] && tail -n 30 "$tf" >&2
		exit 1
	fi
	local wall user sys rss size
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$tf")
	user=$(awk -F': ' '/User time/ {print $2}' "$tf")
	sys=$(awk -F': ' '/System time/ {print $2}' "$tf")
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")
	size=$(du -sb "$(repo_of "$tool")" | cut -f1)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ROUND" "$tool" "$step" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN {print u+s}')" "$rss" "$size" >>"$RESULTS"
}

# One function per tool and step; DATA is the working directory for backups
# so restic and borg store paths relative to it, like clusterguard does.
step_clusterguard() { cg_step clusterguard "$CG" "$1"; }
step_clusterguard-base() { cg_step clusterguard-base "$CLUSTERGUARD_BASE_BIN" "$1"; }
cg_step() {
	local tool=$1 bin=$2 step=$3 repo
	repo=$(repo_of "$tool")
	case $step in
	init) measure "$tool" init "$WORK" "$bin" engine repo init --repo "$repo" ;;
	backup-initial | backup-unchanged)
		measure "$tool" "$step" "$DATA" "$bin" engine repo backup --repo "$repo" --workload bench "$DATA" ;;
	backup-1pct)
		measure "$tool" "$step" "$DATA" "$bin" engine repo backup --repo "$repo" --workload bench --changed-ranges "$RANGES" "$DATA" ;;
	backup-1pct-nohints)
		measure "$tool" "$step" "$DATA" "$bin" engine repo backup --repo "$repo" --workload bench "$DATA" ;;
	restore) measure "$tool" restore "$WORK" "$bin" engine repo restore latest --repo "$repo" --target "$WORK/restore/$tool" ;;
	verify) measure "$tool" verify "$WORK" "$bin" engine repo verify --read-data --repo "$repo" ;;
	esac
}

step_restic() {
	local step=$1 repo
	repo=$(repo_of restic)
	case $step in
	# Repository format 2 (compression); compression "auto" is restic's default.
	init) measure restic init "$WORK" restic init --repository-version 2 -r "$repo" ;;
	backup-initial | backup-unchanged | backup-1pct | backup-1pct-nohints)
		measure restic "$step" "$DATA" restic -r "$repo" backup --host bench . ;;
	restore) measure restic restore "$WORK" restic -r "$repo" restore latest --target "$WORK/restore/restic" ;;
	verify) measure restic verify "$WORK" restic -r "$repo" check --read-data ;;
	esac
}

step_borg() {
	local step=$1 repo
	repo=$(repo_of borg)
	case $step in
	init) measure borg init "$WORK" borg init --encryption="$BORG_ENCRYPTION" "$repo" ;;
	backup-initial | backup-unchanged | backup-1pct | backup-1pct-nohints)
		measure borg "$step" "$DATA" borg create --compression "$BORG_COMPRESSION" "$repo::$step" . ;;
	restore)
		mkdir -p "$WORK/restore/borg"
		measure borg restore "$WORK/restore/borg" borg extract "$repo::backup-1pct-nohints" ;;
	verify) measure borg verify "$WORK" borg check --verify-data "$repo" ;;
	esac
}

# restored_matches TOOL: the restored tree equals the dataset (not timed).
restored_matches() {
	local root="$WORK/restore/$1" img
	img=$(find "$root" -name disk.img -type f | head -n 1)
	[[ -n "$img" ]] || { echo "no (disk.img missing)"; return; }
	if diff -r -q "$DATA" "$(dirname "$img")" >"$WORK/logs/$1-restore.diff" 2>&1; then
		echo yes
	else
		echo "NO (see $(head -n 3 "$WORK/logs/$1-restore.diff" | tr '\n' ' '))"
	fi
}

STEPS="init backup-initial backup-unchanged backup-1pct backup-1pct-nohints restore verify"
declare -A RESTORE_OK
LOADAVG=""
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
	log "round $ROUND of $ROUNDS: generating the dataset (seed $SEED)"
	rm -rf "$DATA" "$WORK/repos" "$WORK/restore" "$WORK/cache"
	mkdir -p "$WORK/logs" "$WORK/repos" "$WORK/restore"
	"$GENDATA" generate -dir "$DATA" -seed "$SEED" -image-mib "$IMAGE_MIB" -small-mib "$SMALL_MIB" >&2
	DATA_BYTES=$(find "$DATA" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
	DATA_FILES=$(find "$DATA" -type f | wc -l)
	LOADAVG+="$(cut -d' ' -f1-3 /proc/loadavg) / "
	for step in $STEPS; do
		if [[ $step == backup-1pct ]]; then
			log "changing 1% of the dataset"
			"$GENDATA" mutate -dir "$DATA" -ranges "$RANGES" -seed "$((SEED + 1000))" >&2
		fi
		if [[ $step == backup-1pct-nohints ]]; then
			log "changing another 1% of the dataset (no hints given to anyone)"
			"$GENDATA" mutate -dir "$DATA" -ranges "$WORK/changed-ranges-unused.json" -seed "$((SEED + 2000))" >&2
		fi
		for tool in $TOOLS; do
			"step_$tool" "$step"
			if [[ $step == restore ]]; then
				ok=$(restored_matches "$tool")
				[[ ${RESTORE_OK[$tool]:-yes} == yes ]] && RESTORE_OK[$tool]=$ok
				rm -rf "${WORK:?}/restore/$tool" # free the space before the next restore
			fi
		done
	done
done

# medians: one line per tool and step: tool step wall cpu rss size wall_min wall_max
MEDIANS="$WORK/medians.tsv"
awk -F'\t' '
	function median(list,   n, a, i, j, t) {
		n = split(list, a, " ")
		for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j+1] = a[j]; a[j+1] = t }
		return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	function lo(list,   n, a, i, m) { n = split(list, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 < m + 0) m = a[i]; return m }
	function hi(list,   n, a, i, m) { n = split(list, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 > m + 0) m = a[i]; return m }
	{ k = $2 "\t" $3; if (!(k in wall)) order[++n] = k; wall[k] = wall[k] " " $4; cpu[k] = cpu[k] " " $5; rss[k] = rss[k] " " $6; size[k] = size[k] " " $7 }
	END { for (i = 1; i <= n; i++) { k = order[i]; printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k, median(wall[k]), median(cpu[k]), median(rss[k]), median(size[k]), lo(wall[k]), hi(wall[k]) } }
' "$RESULTS" >"$MEDIANS"

# --- report -------------------------------------------------------------------
cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
mem_gib=$(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo)
fs_type=$(df -T "$WORK" | awk 'NR==2 {print $2}')
cg_version=$(cd "$repo_root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
cg_dirty=$(cd "$repo_root" && git status --porcelain 2>/dev/null | grep -q . && echo " (+ uncommitted changes)" || true)

{
	echo "### Results"
	echo
	echo "- Machine: $cpu_model, $(nproc) cores, ${mem_gib} GiB RAM, $(uname -sr), $fs_type filesystem (dataset, repositories and restores on the same disk)"
	echo "- Dataset (seed $SEED): $(awk -v b="$DATA_BYTES" 'BEGIN {printf "%.2f GiB", b/1073741824}') in $DATA_FILES files: disk.img $IMAGE_MIB MiB (zero/random/text extents) + $SMALL_MIB MiB of small text and binary files; the change: 1% of disk.img in 64 KiB-1 MiB ranges + 1% of the small files"
	echo "- Versions: clusterguard $cg_version$cg_dirty${CLUSTERGUARD_BASE_BIN:+ (binary $CG); clusterguard-base: $CLUSTERGUARD_BASE_BIN}; $(restic version | cut -d' ' -f1-2); $(borg --version)"
	echo "- Settings: clusterguard defaults (zstd, encrypted); restic repository v2, compression auto (default); borg encryption $BORG_ENCRYPTION, compression $BORG_COMPRESSION"
	echo "- $CACHE_NOTE"
	echo "- $ROUNDS rounds, each on a fresh dataset and fresh repositories; figures are medians, the wall range is min-max over the rounds. Load average (1/5/15 min) at the start of each round: ${LOADAVG% / }"
	echo "- MiB/s = dataset size / median wall time (for the re-backups too: effective throughput). CPU = user + system. Repo = du -sb after the step."
	echo
	echo "| step | tool | wall s | wall range s | MiB/s | CPU s | peak RSS MiB | repo MiB |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|"
	for step in $STEPS; do
		for tool in $TOOLS; do
			awk -F'\t' -v t="$tool" -v s="$step" -v b="$DATA_BYTES" '$1==t && $2==s {
				rate = (s == "init" || $3 == 0) ? "-" : sprintf("%.0f", b/1048576/$3)
				printf "| %s | %s | %.2f | %.2f-%.2f | %s | %.2f | %.0f | %.1f |\n", s, t, $3, $7, $8, rate, $4, $5/1024, $6/1048576
			}' "$MEDIANS"
		done
	done
	echo
	echo "Restore matches the source: $(for t in $TOOLS; do printf '%s %s; ' "$t" "${RESTORE_OK[$t]}"; done)"
	if [[ " $TOOLS " == *" clusterguard "* && " $TOOLS " == *" restic "* ]]; then
		echo
		echo "### Targets (clusterguard vs restic, on the medians)"
		echo
		awk -F'\t' -v b="$DATA_BYTES" '
			{ wall[$1,$2]=$3; cpu[$1,$2]=$4; rss[$1,$2]=$5; size[$1,$2]=$6 }
			function verdict(ok) { return ok ? "met" : "**missed**" }
			function maxrss(t,   m, s) { m=0; split("backup-initial backup-unchanged backup-1pct backup-1pct-nohints restore verify", st, " ");
				for (i in st) if (rss[t,st[i]] > m) m = rss[t,st[i]]; return m }
			END {
				print "| target | measured (wall, medians) | result | CPU time for comparison |"
				print "|---|---|---|---|"
				r = wall["restic","backup-initial"] / wall["clusterguard","backup-initial"]
				printf "| initial backup >= 1.5x restic throughput | %.2fx (%.2f s vs %.2f s) | %s | restic uses %.2fx our CPU (%.2f s vs %.2f s) |\n", r, wall["clusterguard","backup-initial"], wall["restic","backup-initial"], verdict(r >= 1.5), cpu["restic","backup-initial"]/cpu["clusterguard","backup-initial"], cpu["restic","backup-initial"], cpu["clusterguard","backup-initial"]
				g = b / 1073741824; u = wall["clusterguard","backup-unchanged"] / g
				printf "| unchanged re-backup <= 0.5 s per GiB | %.3f s/GiB | %s | %.2f CPU s |\n", u, verdict(u <= 0.5), cpu["clusterguard","backup-unchanged"]
				p = wall["clusterguard","backup-1pct"] / wall["clusterguard","backup-initial"]
				printf "| 1%% change with range hints <= 5%% of the initial time | %.1f%% (%.2f s vs %.2f s) | %s | %.1f%% of the initial CPU |\n", 100*p, wall["clusterguard","backup-1pct"], wall["clusterguard","backup-initial"], verdict(p <= 0.05), 100*cpu["clusterguard","backup-1pct"]/cpu["clusterguard","backup-initial"]
				p = wall["clusterguard","backup-1pct-nohints"] / wall["clusterguard","backup-initial"]
				q = wall["restic","backup-1pct-nohints"] / wall["restic","backup-initial"]
				o = ""
				if (("borg","backup-initial") in wall) o = sprintf("; borg %.1f%%", 100*wall["borg","backup-1pct-nohints"]/wall["borg","backup-initial"])
				printf "| 1%% change without hints <= 12%% of the initial time | %.1f%% (%.2f s vs %.2f s); restic %.1f%%%s | %s | %.1f%% of the initial CPU |\n", 100*p, wall["clusterguard","backup-1pct-nohints"], wall["clusterguard","backup-initial"], 100*q, o, verdict(p <= 0.12), 100*cpu["clusterguard","backup-1pct-nohints"]/cpu["clusterguard","backup-initial"]
				r = wall["restic","restore"] / wall["clusterguard","restore"]
				printf "| restore >= 2x restic | %.2fx (%.2f s vs %.2f s) | %s | restic uses %.2fx our CPU (%.2f s vs %.2f s) |\n", r, wall["clusterguard","restore"], wall["restic","restore"], verdict(r >= 2), cpu["restic","restore"]/cpu["clusterguard","restore"], cpu["restic","restore"], cpu["clusterguard","restore"]
				s1 = size["clusterguard","verify"]; s2 = size["restic","verify"]
				printf "| repository size <= restic | %.1f MiB vs %.1f MiB (%.2fx) | %s | |\n", s1/1048576, s2/1048576, s1/s2, verdict(s1 <= s2)
				m1 = maxrss("clusterguard"); m2 = maxrss("restic")
				printf "| peak RSS <= restic (max over backup, restore, verify) | %.0f MiB vs %.0f MiB (%.2fx) | %s | |\n", m1/1024, m2/1024, m1/m2, verdict(m1 <= m2)
				split("backup-initial backup-unchanged backup-1pct backup-1pct-nohints restore verify", st, " ")
				line = ""
				for (i = 1; i <= 6; i++) line = line sprintf("%s %.0f/%.0f MiB; ", st[i], rss["clusterguard",st[i]]/1024, rss["restic",st[i]]/1024)
				print ""
				print "Peak RSS per step (clusterguard/restic): " line
			}' "$MEDIANS"
	fi
} >"$WORK/results.md"

mkdir -p "$(dirname "$MARKDOWN")"
cp "$WORK/results.md" "$MARKDOWN"
cp "$RESULTS" "${MARKDOWN%.md}.tsv" # every round's raw figures
cat "$WORK/results.md"
log "Markdown written to $MARKDOWN"
