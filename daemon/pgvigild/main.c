/*
 * pgvigild: the watchdog daemon.  pgvigild [-c FILE] [--foreground]
 *
 * Start-up order matters: the configuration is validated before anything is created (a bad
 * config leaves no pidfile, socket or journal behind); the pidfile lock is taken before the
 * journal is opened, so two daemons never write one journal.
 *
 * Under systemd ($NOTIFY_SOCKET or $JOURNAL_STREAM set) it never daemonizes, logs to stderr
 * (the journal of systemd) unless log.path is set, and tells the service manager READY=1 once
 * the control socket listens and the daemon-start record is written, STOPPING=1 on the way
 * out; the watchdog pings come from the loop (notify.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "ctl/ctl.h"
#include "io/sdnotify.h"
#include "pgvigild/daemon.h"
#include "pgvigild/notify.h"

#define PV_DEFAULT_CONF "/etc/pgvigil/pgvigil.conf"

static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;
	if (write(signal_pipe[1], &c, 1) < 0) {
		/* the pipe is full: the loop has plenty to read already */
	}
	errno = saved;
}

static int setup_signals(void)
{
	if (pipe2(signal_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
		return -1;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* Creates the parent directory of path if it is missing (one level, mode 0700). */
static void ensure_parent(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return;
	const char *dir = dirname(copy);
	struct stat st;
	if (stat(dir, &st) != 0)
		(void)mkdir(dir, 0700);
	free(copy);
}

static int lock_pidfile(const char *path)
{
	ensure_parent(path);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "pgvigild: %s: cannot open pidfile: %s\n", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		char buf[32] = "";
		ssize_t n = read(fd, buf, sizeof buf - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		fprintf(stderr,
		        "pgvigild: another pgvigild (pid %s) is already running for this configuration: "
		        "%s is locked\n",
		        buf[0] ? buf : "?", path);
		close(fd);
		return -1;
	}
	return fd;
}

static void write_pid(int fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) == n)
		(void)fsync(fd);
}

static int daemonize(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	return chdir("/");
}

static void usage(FILE *fp)
{
	fprintf(fp, "usage: pgvigild [-c FILE] [--foreground]\n");
}

int main(int argc, char **argv)
{
	const char *conf = getenv("PGVIGIL_CONF");
	bool foreground = false;
	PvConfig *cfg = NULL;
	PvJournal *journal = NULL;
	PvBuf errors = {0};
	PvError err;
	int rc = 1, pidfd = -1, listen_fd = -1;
	char *log_path = NULL;

	if (!conf || !*conf)
		conf = PV_DEFAULT_CONF;
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--foreground") == 0)
			foreground = true;
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			fprintf(stderr, "pgvigild: unknown argument %s\n", argv[i]);
			return 2;
		}
	}

	/* a service manager tracks this process: never fork away from it */
	const char *stream = getenv("JOURNAL_STREAM");
	if (pv_sd_enabled() || (stream && *stream))
		foreground = true;

	/* daemonizing chdir()s to /: SIGHUP must still find a relative -c path */
	char *conf_abs = realpath(conf, NULL);
	if (conf_abs)
		conf = conf_abs;
	if (pv_config_load(conf, &cfg, &errors) != PV_OK) {
		fputs(errors.data ? errors.data : "", stderr);
		fprintf(stderr, "pgvigild: %s: configuration invalid, not started\n", conf);
		pv_buf_free(&errors);
		free(conf_abs);
		return 2;
	}
	pv_buf_free(&errors);

	if (cfg->log_path && *cfg->log_path)
		log_path = strdup(cfg->log_path);
	else if (!foreground) {
		char *copy = strdup(cfg->journal_path);
		log_path = copy ? pv_xasprintf("%s/pgvigild.log", dirname(copy)) : NULL;
		free(copy);
	}

	pidfd = lock_pidfile(cfg->control_pidfile);
	if (pidfd < 0)
		goto out;
	ensure_parent(cfg->journal_path);
	if (pv_journal_open(cfg->journal_path, &journal, &err) != PV_OK) {
		fprintf(stderr, "pgvigild: %s\n", err.msg);
		goto out;
	}
	pv_journal_set_rotation(journal, cfg->journal_max_bytes, cfg->journal_keep);
	if (pv_log_open(log_path, (PvLogLevel)cfg->log_level, &err) != PV_OK) {
		fprintf(stderr, "pgvigild: %s\n", err.msg);
		goto out;
	}
	ensure_parent(cfg->control_socket);
	if (pv_ctl_listen(cfg->control_socket, &listen_fd, &err) != PV_OK) {
		fprintf(stderr, "pgvigild: %s\n", err.msg);
		goto out;
	}
	if (setup_signals() != 0) {
		fprintf(stderr, "pgvigild: cannot set up signal handling: %s\n", strerror(errno));
		goto out;
	}
	if (!foreground && daemonize() != 0) {
		pv_error("cannot daemonize: %s", strerror(errno));
		goto out;
	}
	write_pid(pidfd);

	PvDaemon d;
	char *sock = pv_xstrdup(cfg->control_socket);
	char *pidpath = pv_xstrdup(cfg->control_pidfile);
	if (pv_daemon_init(&d, cfg, journal, listen_fd, signal_pipe[0], &err) != PV_OK) {
		pv_error("%s", err.msg);
		free(sock);
		free(pidpath);
		goto out;
	}
	cfg = NULL; /* the daemon owns them now */
	journal = NULL;
	char status[256], *ready;
	pv_notify_status(&d, status, sizeof status);
	ready = pv_xasprintf("READY=1\nMAINPID=%ld\nSTATUS=%s\n", (long)getpid(), status);
	if (pv_sd_notify(NULL, ready, &err) != PV_OK)
		pv_warn("systemd notification: %s", err.msg);
	free(ready);
	pv_daemon_run(&d);
	if (pv_sd_notify(NULL, "STOPPING=1\nSTATUS=stopping\n", &err) != PV_OK)
		pv_warn("systemd notification: %s", err.msg);
	pv_daemon_fini(&d);
	unlink(sock);
	unlink(pidpath);
	free(sock);
	free(pidpath);
	rc = 0;
out:
	if (listen_fd >= 0)
		close(listen_fd);
	if (pidfd >= 0)
		close(pidfd);
	pv_journal_free(journal);
	pv_config_free(cfg);
	pv_log_close();
	free(log_path);
	free(conf_abs);
	return rc;
}
