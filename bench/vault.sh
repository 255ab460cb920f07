#!/usr/bin/env bash
# Vault index benchmarks (issue 13 §2):
#  1. BenchmarkVaultScrape: the vault collector's scrape (one Update) with
#     1k, 100k, 1M and 10M vault files indexed, plus the index's first full
#     scan (scan-s, what every scrape cost before the index) and the heap it
#     holds (index-MB). Target: the scrape cost does not depend on the number
#     of files (CPU per scrape at 10M within 2x of 1k, same allocations).
#  2. BenchmarkScan: one full scan (listing + fstatat per candidate) at 1k,
#     100k and 1M: what the index pays at start, every --vault.rescan-interval
#     and after an inotify overflow.
# Vault entries are hard links of empty files (regular files to lstat
# like any other): 10M separate inodes would take about 10 GB of tmpfs.
# They are made under VAULT_BENCH_TMPDIR (default /dev/shm when it is a
# tmpfs with inodes for all, else /var/tmp) and removed afterwards; 10M
# takes about 15 minutes on this machine's ext4 (removing it longer:
# VAULT_BENCH_KEEP=DIR keeps the directories there for the next run).
# VAULT_BENCH_MAX=1000000 stops at 1M.
# Exits non-zero if a benchmark fails or the scrape cost grows with files.
set -euo pipefail
cd "$(dirname "$0")/.."
VAULT_BENCH_MAX=${VAULT_BENCH_MAX:-10000000}
if [ -z "${VAULT_BENCH_TMPDIR:-}" ]; then
  # tmpfs counts each hard link against its inode limit: /dev/shm only if
  # it has room for all of them, else the root file system (ext4 here).
  VAULT_BENCH_TMPDIR=/var/tmp
  if [ "$(df --output=fstype /dev/shm 2>/dev/null | tail -1)" = tmpfs ] &&
     [ "$(df --output=iavail /dev/shm | tail -1)" -gt $((VAULT_BENCH_MAX + 1200000)) ]; then
    VAULT_BENCH_TMPDIR=/dev/shm
  fi
fi
export TMPDIR=$VAULT_BENCH_TMPDIR VAULT_BENCH_MAX
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "vault benchmarks ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), files on $(df --output=fstype "$TMPDIR" | tail -1) at $TMPDIR)"
go test -run '^$' -bench '^BenchmarkVaultScrape$' -benchtime 200000x -benchmem -count 1 -timeout 60m ./collector/ | tee "$out"
go test -run '^$' -bench '^BenchmarkScan$' -benchtime 3x -count 1 -timeout 30m ./internal/vaultindex/ | tee -a "$out"

awk '
/^BenchmarkVaultScrape\// {
  split($1, p, "/"); size = p[2]; sub(/-[0-9]+$/, "", size)
  for (i = 3; i < NF; i++) v[size, $(i + 1)] = $i
  order[++n] = size
}
END {
  if (n == 0) { print "no BenchmarkVaultScrape result"; exit 1 }
  printf "\n%-6s %14s %15s %10s %10s %12s %10s\n", "files", "scrape ns/op", "scrape CPU ns", "B/op", "allocs/op", "first scan s", "index MB"
  for (i = 1; i <= n; i++) {
    s = order[i]
    printf "%-6s %14.0f %15.0f %10d %10d %12.2f %10.1f\n", s, v[s, "ns/op"], v[s, "cpu-ns/op"], v[s, "B/op"], v[s, "allocs/op"], v[s, "scan-s"], v[s, "index-MB"]
  }
  first = order[1]; last = order[n]
  ratio = v[last, "cpu-ns/op"] / v[first, "cpu-ns/op"]
  if (ratio > 2 || v[last, "allocs/op"] != v[first, "allocs/op"]) {
    printf "FAIL: a scrape with %s files costs %.2fx the one with %s (allocs %d vs %d)\n", last, ratio, first, v[last, "allocs/op"], v[first, "allocs/op"]
    exit 1
  }
  printf "OK: a scrape with %s files costs %.2fx the one with %s, same allocations\n", last, ratio, first
}' "$out"
