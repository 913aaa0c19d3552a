#!/usr/bin/env bash
# Installs the Debian packages the tests run for real, when they are
# missing: the PostgreSQL server (catalog and the postgresql workload
# driver), QEMU (the qemu workload driver), and the XFS and btrfs tools
# (the agent's reflink and snapshot views are tested on loop-mounted file
# systems). As root it installs them with
# apt-get; otherwise it says what to install and fails.
set -euo pipefail

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v qemu-img >/dev/null || missing+=(qemu-utils)
command -v mkfs.xfs >/dev/null || missing+=(xfsprogs)
command -v mkfs.btrfs >/dev/null || missing+=(btrfs-progs)
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
	echo "test-deps: the tests need ${missing[*]}: install them (Debian: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "test-deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
