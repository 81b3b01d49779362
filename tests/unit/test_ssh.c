/*
 * test_ssh: the pure parts of io/ssh: argument quoting (checked against real POSIX shells),
 * fingerprint formatting (against ssh-keygen -l), host:port names, result descriptions, and
 * the errors that need no server.  The module against a real sshd: tests/integration/t_ssh.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libssh2.h>

#include "common/buf.h"
#include "common/clock.h"
#include "io/proc.h"
#include "io/ssh.h"

static char *quote(const char *arg)
{
	PvBuf b = {0};
	pv_ssh_quote(&b, arg);
	return pv_buf_steal(&b);
}

static void test_quote(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"abc", "'abc'"},
	    {"", "''"},
	    {"it's", "'it'\\''s'"},
	    {"'", "''\\'''"},
	    {"''", "''\\'''\\'''"},
	    {"a b", "'a b'"},
	    {"$(id)", "'$(id)'"},
	    {"`id`", "'`id`'"},
	    {"; rm -rf /", "'; rm -rf /'"},
	    {"a\nb", "'a\nb'"},
	    {"\\", "'\\'"},
	    {"\"x\"", "'\"x\"'"},
	    {"*", "'*'"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *q = quote(cases[i].in);
		assert_string_equal(q, cases[i].want);
		free(q);
	}
	const char *argv[] = {"pg_ctl", "-D", "/var/lib/post gres", "it's", NULL};
	char *cmd = pv_ssh_command(argv);
	assert_string_equal(cmd, "'pg_ctl' '-D' '/var/lib/post gres' 'it'\\''s'");
	free(cmd);
	const char *none[] = {NULL};
	cmd = pv_ssh_command(none);
	assert_string_equal(cmd, "");
	free(cmd);
}

/* What a shell makes of the quoted command line: printf %s each word, NUL-separated. */
static void shell_round_trip(const char *shell, const char *const *words)
{
	PvBuf line = {0};
	pv_buf_puts(&line, "printf '%s\\0'");
	for (size_t i = 0; words[i]; i++) {
		pv_buf_putc(&line, ' ');
		pv_ssh_quote(&line, words[i]);
	}
	const char *argv[] = {shell, "-c", line.data, NULL};
	PvProcSpec spec = {.argv = argv, .timeout_ms = 5000};
	PvProc *p = NULL;
	PvError err = {0};
	if (pv_proc_run(&spec, &p, &err) != PV_OK)
		fail_msg("%s: %s", shell, err.msg);
	assert_int_equal(pv_proc_exit_status(p), 0);
	const PvBuf *out = pv_proc_stdout(p);
	size_t off = 0;
	for (size_t i = 0; words[i]; i++) {
		size_t n = strlen(words[i]);
		if (off + n + 1 > out->len || memcmp(out->data + off, words[i], n) != 0 ||
		    out->data[off + n] != '\0')
			fail_msg("%s mangled word %zu (%s)", shell, i, words[i]);
		off += n + 1;
	}
	assert_int_equal(off, out->len);
	pv_proc_free(p);
	pv_buf_free(&line);
}

static void test_quote_shells(void **state)
{
	(void)state;
	const char *hostile[] = {"plain",
	                         "",
	                         "two words",
	                         "it's",
	                         "'",
	                         "\"double\"",
	                         "semi; colon",
	                         "$(touch /tmp/pv_test_ssh_pwned)",
	                         "`touch /tmp/pv_test_ssh_pwned`",
	                         "${HOME}$HOME",
	                         "new\nline\n",
	                         "tab\there",
	                         "back\\slash\\",
	                         "glob * ? [a]",
	                         "| & > < ( ) { } !",
	                         "-n",
	                         "~",
	                         "#comment",
	                         "\x01\x7f\xc3\xa9",
	                         NULL};
	const char *shells[] = {"/bin/sh", "/bin/bash", "/bin/dash"};
	for (size_t i = 0; i < sizeof shells / sizeof shells[0]; i++) {
		if (access(shells[i], X_OK) != 0)
			continue;
		shell_round_trip(shells[i], hostile);
	}
	assert_int_not_equal(access("/tmp/pv_test_ssh_pwned", F_OK), 0);
}

static void test_fingerprint(void **state)
{
	(void)state;
	/* an ed25519 key's blob hash, and what ssh-keygen -l printed for that key */
	static const unsigned char key[32] = {0x96, 0x29, 0x55, 0x4d, 0x1b, 0x55, 0x8a, 0x46,
	                                      0xd2, 0xb0, 0xef, 0xa7, 0xbb, 0xf1, 0xd7, 0xe5,
	                                      0x5f, 0x31, 0x19, 0xd1, 0xda, 0xba, 0x08, 0xdb,
	                                      0xd5, 0xdc, 0x28, 0xdc, 0xec, 0xac, 0xd3, 0xc0};
	char fp[PV_SSH_FINGERPRINT_LEN];
	pv_ssh_fingerprint(key, fp, sizeof fp);
	assert_string_equal(fp, "SHA256:lilVTRtVikbSsO+nu/HX5V8xGdHaugjb1dwo3Oys08A");

	/* SHA-256 of nothing */
	static const unsigned char empty[32] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
	                                        0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
	                                        0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
	                                        0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
	pv_ssh_fingerprint(empty, fp, sizeof fp);
	assert_string_equal(fp, "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU");

	unsigned char zeros[32] = {0}, ones[32];
	memset(ones, 0xff, sizeof ones);
	pv_ssh_fingerprint(zeros, fp, sizeof fp);
	assert_string_equal(fp, "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	pv_ssh_fingerprint(ones, fp, sizeof fp);
	assert_string_equal(fp, "SHA256://////////////////////////////////////////8");
	assert_int_equal(strlen(fp), 7 + 43);

	/* a short buffer truncates, NUL-terminated */
	char small[10];
	pv_ssh_fingerprint(zeros, small, sizeof small);
	assert_string_equal(small, "SHA256:AA");
}

static void test_names(void **state)
{
	(void)state;
	char hp[64];
	pv_ssh_format_hostport("db0.example.net", 22, hp, sizeof hp);
	assert_string_equal(hp, "db0.example.net:22");
	pv_ssh_format_hostport("10.0.0.1", 2222, hp, sizeof hp);
	assert_string_equal(hp, "10.0.0.1:2222");
	pv_ssh_format_hostport("::1", 22, hp, sizeof hp);
	assert_string_equal(hp, "[::1]:22");

	assert_string_equal(pv_ssh_hostkey_type_name(LIBSSH2_HOSTKEY_TYPE_ED25519), "ssh-ed25519");
	assert_string_equal(pv_ssh_hostkey_type_name(LIBSSH2_HOSTKEY_TYPE_RSA), "ssh-rsa");
	assert_string_equal(pv_ssh_hostkey_type_name(LIBSSH2_HOSTKEY_TYPE_DSS), "ssh-dss");
	assert_string_equal(pv_ssh_hostkey_type_name(LIBSSH2_HOSTKEY_TYPE_ECDSA_256),
	                    "ecdsa-sha2-nistp256");
	assert_string_equal(pv_ssh_hostkey_type_name(LIBSSH2_HOSTKEY_TYPE_ECDSA_384),
	                    "ecdsa-sha2-nistp384");
	assert_string_equal(pv_ssh_hostkey_type_name(LIBSSH2_HOSTKEY_TYPE_ECDSA_521),
	                    "ecdsa-sha2-nistp521");
	assert_string_equal(pv_ssh_hostkey_type_name(LIBSSH2_HOSTKEY_TYPE_UNKNOWN), "unknown");
	assert_string_equal(pv_ssh_hostkey_type_name(99), "unknown");
}

static void test_result(void **state)
{
	(void)state;
	char d[64];
	PvSshResult r = {.exit_status = 0};
	assert_true(pv_ssh_result_ok(&r));
	pv_ssh_result_describe(&r, d, sizeof d);
	assert_string_equal(d, "exit 0");
	r.exit_status = 3;
	assert_false(pv_ssh_result_ok(&r));
	pv_ssh_result_describe(&r, d, sizeof d);
	assert_string_equal(d, "exit 3");
	/* a signal fails the command even beside exit status 0 */
	r.exit_status = 0;
	strcpy(r.exit_signal, "TERM");
	assert_false(pv_ssh_result_ok(&r));
	pv_ssh_result_describe(&r, d, sizeof d);
	assert_string_equal(d, "killed by signal TERM");
	r = (PvSshResult){.exit_status = -1};
	assert_false(pv_ssh_result_ok(&r));
	pv_ssh_result_describe(&r, d, sizeof d);
	assert_string_equal(d, "no exit status");
	pv_buf_puts(&r.out, "x");
	pv_ssh_result_free(&r);
	assert_null(r.out.data);
	pv_ssh_result_free(NULL);
}

/* Errors that need no sshd: refused port, bad arguments, a blackhole under its deadline. */
static void test_errors_without_server(void **state)
{
	(void)state;
	PvSshTarget t = {.host = "127.0.0.1",
	                 .port = 1, /* nothing listens on port 1 */
	                 .user = "postgres",
	                 .key = "/nonexistent/key",
	                 .passphrase = "Sekr1t",
	                 .known_hosts = "/nonexistent/known_hosts",
	                 .connect_timeout_ms = 2000};
	PvSsh *s = pv_ssh_new(&t);
	assert_string_equal(pv_ssh_name(s), "127.0.0.1:1");
	assert_false(pv_ssh_connected(s));
	assert_string_equal(pv_ssh_hostkey(s), "");
	PvSshResult res;
	PvError err = {0};
	const char *argv[] = {"true", NULL};
	assert_int_equal(pv_ssh_run(s, argv, 1000, &res, &err), PV_ERR_IO);
	assert_string_equal(err.msg, "127.0.0.1:1: connect: Connection refused");
	assert_null(strstr(err.msg, "Sekr1t"));
	assert_false(res.connected);
	pv_ssh_result_free(&res);

	const char *empty[] = {NULL};
	assert_int_equal(pv_ssh_run(s, empty, 1000, &res, &err), PV_ERR_USAGE);
	pv_ssh_result_free(&res);
	assert_int_equal(pv_ssh_run(s, argv, 0, &res, &err), PV_ERR_USAGE);
	pv_ssh_result_free(&res);
	assert_int_equal(pv_ssh_connect(s, 0, &err), PV_ERR_USAGE);
	pv_ssh_close(s);
	pv_ssh_free(s);
	pv_ssh_free(NULL);

	/* a name that does not resolve: fails, within the deadline */
	t.host = "pgvigil-no-such-host.invalid";
	t.port = 22;
	s = pv_ssh_new(&t);
	int64_t t0 = pv_clock_mono_ms();
	PvStatus st = pv_ssh_run(s, argv, 3000, &res, &err);
	assert_true(st == PV_ERR_IO || st == PV_ERR_TIMEOUT);
	assert_true(pv_clock_mono_ms() - t0 < 3500);
	assert_non_null(strstr(err.msg, "pgvigil-no-such-host.invalid:22: "));
	pv_ssh_result_free(&res);
	pv_ssh_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quote),       cmocka_unit_test(test_quote_shells),
	    cmocka_unit_test(test_fingerprint), cmocka_unit_test(test_names),
	    cmocka_unit_test(test_result),      cmocka_unit_test(test_errors_without_server),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
