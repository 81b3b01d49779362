# shellcheck shell=bash
# tests/backup_lib.sh: helpers of the backup tests (tests/integration/t_backup*.sh), sourced
# after tests/lib.sh.
#
#   bk_conf 'keep = 2; interval_s = 2;'   replaces the cluster's backup group in pgvigil.conf
#                                          (archive_dir = the cluster's wal-archive, pg_bin_dir)
#   bk_on_exit CMD                         runs CMD in the EXIT trap, before lib.sh's cleanup
#   bk_restored_stop DIR                   stops a restored copy started by pgvigil restore --start
#   bk_count STATUS                        backups of that status in pgvigil backup list --json
#   bk_label_of N                          the Nth (1-based, oldest first) label in the list

BK_EXIT_CMDS=()

bk_conf() {
	sed -i '/^backup = {.*};$/d' "$CL_DIR/pgvigil.conf" # the one-line group cluster.sh writes
	cat >>"$CL_DIR/pgvigil.conf" <<EOF
backup = {
  archive_dir = "$CL_DIR/wal-archive";
  pg_bin_dir = "$PG_BIN";
  $1
};
EOF
	"$PGVIGIL_BIN/pgvigil" -c "$CL_DIR/pgvigil.conf" check-config >/dev/null ||
		t_bail "the backup group does not load"
}

# The EXIT trap of lib.sh cleans up the cluster; ours runs first, then hands it the test's status.
bk_on_exit() { BK_EXIT_CMDS+=("$1"); }
_bk_exit() {
	local rc=$? c
	for c in "${BK_EXIT_CMDS[@]}"; do eval "$c" >/dev/null 2>&1; done
	(exit "$rc")
	_t_cleanup
}
trap _bk_exit EXIT

bk_restored_stop() {
	local dir=$1
	[[ -f $dir/postmaster.pid ]] || return 0
	_cl_pg "$PG_BIN/pg_ctl" -D "$dir" -m immediate -w -t 30 -s stop
}

# bk_psql_restored DIR PORT SQL: a query on a restored copy (Unix socket in DIR, as postgres).
bk_psql_restored() {
	_cl_pg env PGCONNECT_TIMEOUT=3 timeout -k 2 10 "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-h "$1" -p "$2" -U postgres -d postgres -c "$3"
}

bk_list() { pgvigil backup list --json 2>/dev/null; }

bk_count() {
	local n
	n=$(bk_list | grep -o "\"status\":\"$1\"" | wc -l)
	echo $((n))
}

bk_label_of() { bk_list | grep -o '"label":"[^"]*"' | sed -n "${1}p" | cut -d'"' -f4; }

# bk_journal_count PATTERN...: how many journal lines match every pattern (top-level fields).
bk_journal_count() {
	local n=0 from=0 k
	while k=$(journal_find "$from" "$@"); do
		n=$((n + 1))
		from=$k
	done
	echo "$n"
}

bk_journal_at_least() {
	local want=$1
	shift
	(($(bk_journal_count "$@") >= want))
}
