/*
 * ssh_exec: runs one argv on a host through io/ssh (pv_ssh_run), for tests/integration/t_ssh*.sh.
 *
 *   ssh_exec -H HOST -p PORT -u USER -K KNOWN_HOSTS [-k KEY] [-t TIMEOUT_MS] [-c CONNECT_MS]
 *            [-o OUT] [-e ERR] [-n RUNS] [-g GATE] -- ARGV...
 *
 * The passphrase of KEY comes from the environment variable PV_SSH_PASSPHRASE (not argv, which
 * ps shows).  Without -k the ssh-agent at SSH_AUTH_SOCK is used.  -n runs the command RUNS
 * times over the same PvSsh (session reuse); with -g, each run after the first waits until the
 * file GATE exists and removes it (the test changes the world in between).
 * For each run it prints, one "key=value" a line (values single-line):
 *   run=I status=NAME exit=N signal=SIG connected=0|1 duration_ms=MS
 *   error=MESSAGE            (when status is not ok)
 *   hostkey=TYPE SHA256:...
 *   stdout_bytes=N stderr_bytes=N
 * and writes the last run's raw stdout to OUT and stderr to ERR (byte for byte).
 * Exit status: 0 if every run returned PV_OK (whatever the command's exit), else 1; 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "io/ssh.h"

static int usage(void)
{
	fprintf(stderr, "usage: ssh_exec -H HOST -p PORT -u USER -K KNOWN_HOSTS [-k KEY] "
	                "[-t TIMEOUT_MS] [-c CONNECT_MS] [-o OUT] [-e ERR] [-n RUNS] [-g GATE] -- "
	                "ARGV...\n");
	return 2;
}

static int write_file(const char *path, const PvBuf *b)
{
	FILE *fp = fopen(path, "wb");
	if (!fp)
		return -1;
	size_t n = b->len ? fwrite(b->data, 1, b->len, fp) : 0;
	int rc = (n == b->len && fclose(fp) == 0) ? 0 : -1;
	return rc;
}

int main(int argc, char **argv)
{
	PvSshTarget t = {.port = 22};
	const char *out_path = NULL, *err_path = NULL, *gate = NULL;
	int timeout_ms = 10000, runs = 1, opt;

	while ((opt = getopt(argc, argv, "H:p:u:K:k:t:c:o:e:n:g:")) != -1) {
		switch (opt) {
		case 'H':
			t.host = optarg;
			break;
		case 'p':
			t.port = atoi(optarg);
			break;
		case 'u':
			t.user = optarg;
			break;
		case 'K':
			t.known_hosts = optarg;
			break;
		case 'k':
			t.key = optarg;
			break;
		case 't':
			timeout_ms = atoi(optarg);
			break;
		case 'c':
			t.connect_timeout_ms = atoi(optarg);
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'e':
			err_path = optarg;
			break;
		case 'n':
			runs = atoi(optarg);
			break;
		case 'g':
			gate = optarg;
			break;
		default:
			return usage();
		}
	}
	if (!t.host || !t.user || !t.known_hosts || optind >= argc || runs < 1)
		return usage();
	t.passphrase = getenv("PV_SSH_PASSPHRASE");

	PvSsh *s = pv_ssh_new(&t);
	int rc = 0;
	for (int i = 0; i < runs; i++) {
		if (i > 0 && gate) {
			while (access(gate, F_OK) != 0)
				usleep(10000);
			unlink(gate);
		}
		PvSshResult res;
		PvError err = {0};
		PvStatus st =
		    pv_ssh_run(s, (const char *const *)argv + optind, timeout_ms, &res, &err);
		printf("run=%d status=%s exit=%d signal=%s connected=%d duration_ms=%lld\n", i,
		       pv_status_name(st), res.exit_status,
		       res.exit_signal[0] ? res.exit_signal : "-", res.connected ? 1 : 0,
		       (long long)res.duration_ms);
		if (st != PV_OK) {
			printf("error=%s\n", err.msg);
			rc = 1;
		}
		printf("hostkey=%s\n", pv_ssh_hostkey(s));
		printf("stdout_bytes=%zu stderr_bytes=%zu\n", res.out.len + res.dropped_out,
		       res.err.len + res.dropped_err);
		fflush(stdout);
		if (i == runs - 1) {
			if (out_path && write_file(out_path, &res.out) != 0)
				rc = 1;
			if (err_path && write_file(err_path, &res.err) != 0)
				rc = 1;
		}
		pv_ssh_result_free(&res);
	}
	pv_ssh_free(s);
	return rc;
}
