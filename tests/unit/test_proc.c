/*
 * Tests of io/proc against real child processes (no mocks: fork/exec is the thing tested).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "io/proc.h"

static void test_exit_and_output(void **state)
{
	(void)state;
	const char *argv[] = {"sh", "-c", "echo out; echo err >&2; echo \"$PV_X\"; exit 3", NULL};
	const char *env[] = {"PV_X=from-env", NULL};
	PvProcSpec spec = {.argv = argv, .env = env, .timeout_ms = 5000};
	PvProc *p = NULL;
	PvError err;
	assert_int_equal(pv_proc_run(&spec, &p, &err), PV_OK);
	assert_true(pv_proc_done(p));
	assert_int_equal(pv_proc_exit_status(p), 3);
	assert_int_equal(pv_proc_signal(p), 0);
	assert_false(pv_proc_timed_out(p));
	assert_string_equal(pv_proc_stdout(p)->data, "out\nfrom-env\n");
	assert_string_equal(pv_proc_stderr(p)->data, "err\n");
	char d[64];
	pv_proc_describe(p, d, sizeof d);
	assert_string_equal(d, "exit 3");
	pv_proc_free(p);
}

static void test_no_shell_injection(void **state)
{
	(void)state;
	/* an argument is one argv entry: quotes, ; and $() reach the program untouched */
	const char *hostile = "a'b\"c; touch /tmp/pv-proc-injected $(id) `id`\nnext";
	const char *argv[] = {"printf", "%s", hostile, NULL};
	PvProcSpec spec = {.argv = argv, .timeout_ms = 5000};
	PvProc *p = NULL;
	PvError err;
	unlink("/tmp/pv-proc-injected");
	assert_int_equal(pv_proc_run(&spec, &p, &err), PV_OK);
	assert_int_equal(pv_proc_exit_status(p), 0);
	assert_string_equal(pv_proc_stdout(p)->data, hostile);
	assert_int_not_equal(access("/tmp/pv-proc-injected", F_OK), 0);
	pv_proc_free(p);
}

static void test_deadline_kills(void **state)
{
	(void)state;
	const char *argv[] = {"sleep", "30", NULL};
	PvProcSpec spec = {.argv = argv, .timeout_ms = 200};
	PvProc *p = NULL;
	PvError err;
	int64_t t0 = pv_clock_mono_ms();
	assert_int_equal(pv_proc_run(&spec, &p, &err), PV_OK);
	assert_true(pv_proc_timed_out(p));
	assert_int_equal(pv_proc_exit_status(p), -1);
	assert_int_equal(pv_proc_signal(p), SIGTERM);
	assert_true(pv_clock_mono_ms() - t0 < 10000); /* bounded, not the 30 s of the child */
	pv_proc_free(p);
}

static void test_term_ignored_then_killed(void **state)
{
	(void)state;
	const char *argv[] = {"sh", "-c", "trap '' TERM; sleep 30", NULL};
	PvProcSpec spec = {.argv = argv, .timeout_ms = 100};
	PvProc *p = NULL;
	PvError err;
	assert_int_equal(pv_proc_run(&spec, &p, &err), PV_OK);
	assert_true(pv_proc_timed_out(p));
	assert_int_equal(pv_proc_signal(p), SIGKILL);
	pv_proc_free(p);
}

static void test_missing_program(void **state)
{
	(void)state;
	const char *argv[] = {"/nonexistent/pv-program", NULL};
	PvProcSpec spec = {.argv = argv};
	PvProc *p = NULL;
	PvError err;
	assert_int_equal(pv_proc_run(&spec, &p, &err), PV_ERR_IO);
	assert_non_null(strstr(err.msg, "/nonexistent/pv-program"));
	assert_null(p);
}

static void test_drop_privileges(void **state)
{
	(void)state;
	struct passwd *pw = getpwnam("postgres");
	if (geteuid() != 0 || !pw)
		skip();
	const char *argv[] = {"id", "-u", NULL};
	PvProcSpec spec = {.argv = argv, .uid = pw->pw_uid, .gid = pw->pw_gid, .drop_privileges = true, .cwd = "/"};
	PvProc *p = NULL;
	PvError err;
	assert_int_equal(pv_proc_run(&spec, &p, &err), PV_OK);
	char want[32];
	snprintf(want, sizeof want, "%u\n", (unsigned)pw->pw_uid);
	assert_string_equal(pv_proc_stdout(p)->data, want);
	pv_proc_free(p);
}

/* A child reads its stdin from a pipe the caller writes; without stdin_fd it reads nothing. */
static void test_stdin_pipe(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	const char *argv[] = {"cat", NULL};
	PvProcSpec spec = {.argv = argv, .stdin_fd = fds[0], .timeout_ms = 5000};
	PvProc *p = NULL;
	PvError err;
	assert_int_equal(pv_proc_start(&spec, pv_clock_mono_ms(), &p, &err), PV_OK);
	close(fds[0]);
	assert_int_equal(write(fds[1], "streamed\n", 9), 9);
	close(fds[1]);
	pv_proc_wait(p);
	assert_int_equal(pv_proc_exit_status(p), 0);
	assert_string_equal(pv_proc_stdout(p)->data, "streamed\n");
	pv_proc_free(p);
	PvProcSpec none = {.argv = argv, .timeout_ms = 5000};
	assert_int_equal(pv_proc_run(&none, &p, &err), PV_OK);
	assert_int_equal(pv_proc_exit_status(p), 0);
	assert_int_equal(pv_proc_stdout(p)->len, 0);
	pv_proc_free(p);
}

static void test_output_cap(void **state)
{
	(void)state;
	const char *argv[] = {"head", "-c", "600000", "/dev/zero", NULL};
	PvProcSpec spec = {.argv = argv, .timeout_ms = 5000};
	PvProc *p = NULL;
	PvError err;
	assert_int_equal(pv_proc_run(&spec, &p, &err), PV_OK);
	assert_int_equal(pv_proc_exit_status(p), 0);
	assert_int_equal(pv_proc_stdout(p)->len, PV_PROC_OUTPUT_CAP);
	pv_proc_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_and_output),   cmocka_unit_test(test_no_shell_injection),
		cmocka_unit_test(test_deadline_kills),    cmocka_unit_test(test_term_ignored_then_killed),
		cmocka_unit_test(test_missing_program),   cmocka_unit_test(test_drop_privileges),
		cmocka_unit_test(test_output_cap),        cmocka_unit_test(test_stdin_pipe),
	};
	return cmocka_run_group_tests_name("io/proc", tests, NULL, NULL);
}
