#!/usr/bin/env bash
# deps.sh: installs the Debian 12 packages pgvigil's build, tests and demo need.
#
# Idempotent: asks dpkg first and touches apt only when something is missing.  Installing needs
# root.  The postgresql and pgbouncer packages start their own services on install; this script
# keeps them from starting (policy-rc.d while apt runs) and stops what an install started anyway.
# pgvigil's clusters never use the packaged cluster or port 5432.
set -euo pipefail

PACKAGES=(
	build-essential make pkg-config
	libpq-dev libconfig-dev libjansson-dev libssh2-1-dev libcmocka-dev libmicrohttpd-dev libssl-dev
	postgresql-15 postgresql-client-15 pgbouncer
	mandoc valgrind openssh-server openssh-client curl chromium nftables iproute2 iputils-ping procps util-linux coreutils grep sed mawk findutils tar
)

missing=()
for p in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ $status == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	echo "deps: all ${#PACKAGES[@]} packages present"
	exit 0
fi

echo "deps: missing: ${missing[*]}"
if ((EUID != 0)); then
	echo "deps: installing packages needs root; run as root: apt-get install ${missing[*]}" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Which packaged services ran before, so we stop only what this install started.
cluster_was_up=0
if command -v pg_lsclusters >/dev/null 2>&1 && pg_lsclusters -h 2>/dev/null | awk '$1=="15" && $2=="main" && $4 ~ /online/' | grep -q .; then
	cluster_was_up=1
fi
bouncer_was_up=0
if [[ -r /run/postgresql/pgbouncer.pid ]] && kill -0 "$(cat /run/postgresql/pgbouncer.pid)" 2>/dev/null; then
	bouncer_was_up=1
fi

# invoke-rc.d consults policy-rc.d: exit 101 = "do not start services" (only if none exists).
policy=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=1
fi
cleanup() { if ((own_policy)); then rm -f "$policy"; fi; }
trap cleanup EXIT

apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

# Under systemd policy-rc.d is honoured too, but check anyway.
if ((!cluster_was_up)) && command -v pg_lsclusters >/dev/null 2>&1 &&
	pg_lsclusters -h 2>/dev/null | awk '$1=="15" && $2=="main" && $4 ~ /online/' | grep -q .; then
	echo "deps: stopping the packaged cluster 15/main started by the install"
	pg_ctlcluster 15 main stop || true
fi
if ((!bouncer_was_up)) && [[ -r /run/postgresql/pgbouncer.pid ]] &&
	kill -0 "$(cat /run/postgresql/pgbouncer.pid)" 2>/dev/null; then
	echo "deps: stopping the packaged pgbouncer started by the install"
	if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
		systemctl stop pgbouncer || true
	else
		kill -TERM "$(cat /run/postgresql/pgbouncer.pid)" || true
	fi
fi
echo "deps: installed ${missing[*]}"
