/*
 * cmd_backup: `pgvigil backup [--wait]`, `backup status [--json]`, `backup verify LABEL`
 * and `backup list [--json]`.
 *
 * Taking and verifying a backup is the daemon's job (it journals them): those verbs ask it over
 * the control socket, and --wait follows the job through backup-status until it ends (a
 * progress bar on a terminal, a plain line per change otherwise).  `backup list` reads the
 * catalog in backup.directory directly (over ssh on backup.host), so it works with the daemon
 * stopped.
 */
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act/backup.h"
#include "common/clock.h"
#include "common/json.h"
#include "core/cluster.h"
#include "pgvigil/cli.h"

#define BACKUP_USAGE                                                                               \
	"usage: pgvigil backup [--wait] | pgvigil backup status [--json] | pgvigil backup verify " \
	"LABEL | pgvigil backup list [--json]"
#define POLL_MS 500

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : dflt;
}

static int64_t int_or(json_t *o, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* "56.7 MB" */
static void fmt_bytes(char *out, size_t size, int64_t b)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double)b;
	int u = 0;
	if (b < 0) {
		snprintf(out, size, "-");
		return;
	}
	while (v >= 1000.0 && u < 4) {
		v /= 1000.0;
		u++;
	}
	if (u == 0)
		snprintf(out, size, "%" PRId64 " B", b);
	else
		snprintf(out, size, "%.1f %s", v, units[u]);
}

static void fmt_ms(char *out, size_t size, int64_t ms)
{
	if (ms < 0)
		snprintf(out, size, "-");
	else if (ms < 60000)
		snprintf(out, size, "%.1f s", (double)ms / 1000.0);
	else
		snprintf(out, size, "%" PRId64 "m%02" PRId64 "s", ms / 60000, (ms / 1000) % 60);
}

static json_t *ask(PvCli *cli, const char *verb, const char *request, int *rc)
{
	return pv_cli_ask_ok(cli, verb, request, 10000, "request failed", rc);
}

/* One progress line of a running job (no newline). */
static void progress_text(json_t *run, bool bar, char *out, size_t size)
{
	char done[32], total[32], rate[32], eta[32] = "", pct[16] = "";
	int64_t d = int_or(run, "bytes_done", -1), t = int_or(run, "bytes_total", -1);
	int64_t r = int_or(run, "rate_bps", -1), e = int_or(run, "eta_s", -1);
	const char *phase = str_or(run, "phase", "?");
	fmt_bytes(done, sizeof done, d);
	fmt_bytes(total, sizeof total, t);
	if (r > 0) {
		fmt_bytes(rate, sizeof rate, r);
		strcat(rate, "/s");
	} else {
		snprintf(rate, sizeof rate, "-");
	}
	if (e >= 0)
		snprintf(eta, sizeof eta, "ETA %" PRId64 "s", e);
	if (d < 0 || (d == 0 && t < 0)) {
		snprintf(out, size, "%s: %s (%" PRId64 " s)", str_or(run, "label", "?"), phase,
		         int_or(run, "elapsed_ms", 0) / 1000);
		return;
	}
	int percent = t > 0 ? (int)(d * 100 / t) : 0;
	if (percent > 100)
		percent = 100;
	if (t > 0)
		snprintf(pct, sizeof pct, "%3d%%", percent);
	if (bar) {
		char b[32];
		int fill = percent * 24 / 100;
		for (int i = 0; i < 24; i++)
			b[i] = i < fill ? '#' : '.';
		b[24] = '\0';
		snprintf(out, size, "%s [%s] %s %s/%s %s %s %s", str_or(run, "label", "?"), b, pct,
		         done, total, rate, eta, phase);
	} else {
		snprintf(out, size, "%s: %s %s (%s of %s, %s%s%s)", str_or(run, "label", "?"),
		         phase, pct, done, total, rate, *eta ? ", " : "", eta);
	}
}

/* The catalog entry of label, read from disk (false when it is not there). */
static bool catalog_entry(PvCli *cli, const char *label, PvBackupEntry *out)
{
	PvBackupEntry *list = NULL;
	size_t n = 0;
	PvError err;
	bool found = false;
	if (pv_backup_list(cli->cfg, &list, &n, &err) == PV_OK) {
		long i = pv_backup_catalog_find(list, n, label);
		if (i >= 0) {
			*out = list[i];
			found = true;
		}
	}
	free(list);
	return found;
}

/* Follows the daemon's job `label` until it ends; prints the outcome. */
static int wait_job(PvCli *cli, const char *verb, const char *label)
{
	bool tty = isatty(STDOUT_FILENO);
	char last_line[512] = "";
	int64_t last_print = 0;
	int64_t deadline = pv_clock_mono_ms() + (int64_t)cli->cfg->backup_timeout_s * 2000 + 60000;
	int rc = 0;
	for (;;) {
		json_t *st = ask(cli, verb, "{\"cmd\":\"backup-status\"}", &rc);
		if (!st) {
			if (tty && last_line[0])
				putchar('\n');
			return rc;
		}
		json_t *run = json_object_get(st, "running");
		if (json_is_object(run) && strcmp(str_or(run, "label", ""), label) == 0) {
			char line[512];
			progress_text(run, tty, line, sizeof line);
			int64_t now = pv_clock_mono_ms();
			if (tty) {
				printf("\r\033[K%s", line);
				fflush(stdout);
			} else if (strcmp(line, last_line) != 0 && now - last_print >= 2000) {
				printf("%s\n", line);
				fflush(stdout);
				last_print = now;
			}
			snprintf(last_line, sizeof last_line, "%s", line);
			json_decref(st);
			if (now > deadline) {
				if (tty)
					putchar('\n');
				return pv_cli_fail(
				    1, "%s: %s still running after %d s; see pgvigil backup status",
				    verb, label, cli->cfg->backup_timeout_s * 2 + 60);
			}
			poll(NULL, 0, POLL_MS);
			continue;
		}
		if (tty && last_line[0])
			printf("\r\033[K");
		json_t *last = json_object_get(st, "last");
		const char *outcome = NULL, *error = NULL;
		if (json_is_object(last) && strcmp(str_or(last, "label", ""), label) == 0) {
			outcome = str_or(last, "outcome", "?");
			error = str_or(last, "error", NULL);
		}
		PvBackupEntry e;
		bool have = catalog_entry(cli, label, &e);
		if (!outcome)
			outcome = have && pv_backup_status_good(e.status) ? "ok" : "failed";
		if (strcmp(outcome, "ok") == 0 && have && pv_backup_status_good(e.status)) {
			char size[32], dur[32], copy[32], ver[32];
			fmt_bytes(size, sizeof size, e.size_bytes);
			fmt_ms(dur, sizeof dur, e.duration_ms);
			fmt_ms(copy, sizeof copy, e.copy_ms);
			fmt_ms(ver, sizeof ver, e.verify_ms);
			if (strcmp(verb, "backup verify") == 0)
				printf("backup %s verified\n", label);
			else
				printf("backup %s %s: %s in %s (copy %s, verification %s)\n", label,
				       pv_backup_status_name(e.status), size, dur, copy, ver);
			rc = 0;
		} else {
			if (!error && have && e.error[0])
				error = e.error;
			rc = pv_cli_fail(1, "%s: %s %s: %s", verb, label,
			                 strcmp(verb, "backup verify") == 0 ? "failed verification"
			                                                    : "failed",
			                 error ? error : outcome);
		}
		json_decref(st);
		return rc;
	}
}

static int cmd_start(PvCli *cli, bool wait)
{
	int rc = 0;
	json_t *ans = ask(cli, "backup", "{\"cmd\":\"backup-start\"}", &rc);
	if (!ans)
		return rc;
	char label[PV_BACKUP_LABEL_MAX];
	snprintf(label, sizeof label, "%s", str_or(ans, "label", "?"));
	json_decref(ans);
	if (!wait) {
		printf("backup %s started; follow it with: pgvigil backup status\n", label);
		return 0;
	}
	printf("backup %s started\n", label);
	fflush(stdout);
	return wait_job(cli, "backup", label);
}

static int cmd_verify(PvCli *cli, const char *label)
{
	PvBuf req = {0};
	PvJson j;
	pv_json_init(&j, &req);
	pv_json_obj_open(&j, NULL);
	pv_json_str(&j, "cmd", "backup-verify");
	pv_json_str(&j, "label", label);
	pv_json_obj_close(&j);
	int rc = 0;
	json_t *ans = ask(cli, "backup verify", req.data, &rc);
	pv_buf_free(&req);
	if (!ans)
		return rc;
	json_decref(ans);
	return wait_job(cli, "backup verify", label);
}

static int cmd_status(PvCli *cli, bool as_json)
{
	int rc = 0;
	json_t *st = ask(cli, "backup status", "{\"cmd\":\"backup-status\"}", &rc);
	if (!st)
		return rc;
	if (as_json) {
		char *s = json_dumps(st, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
		json_decref(st);
		return 0;
	}
	json_t *run = json_object_get(st, "running");
	if (json_is_object(run)) {
		char line[512];
		progress_text(run, false, line, sizeof line);
		printf("running: %s %s (%s, from %s)\n", str_or(run, "kind", "?"), line,
		       str_or(run, "trigger", "?"), str_or(run, "node", "-"));
	} else {
		printf("running: nothing\n");
	}
	json_t *last = json_object_get(st, "last");
	if (json_is_object(last))
		printf("last: %s %s %s%s%s\n", str_or(last, "kind", "?"),
		       str_or(last, "label", "?"), str_or(last, "outcome", "?"),
		       json_is_string(json_object_get(last, "error")) ? ": " : "",
		       str_or(last, "error", ""));
	json_t *next = json_object_get(st, "next_scheduled_s");
	if (json_is_integer(next))
		printf("next scheduled backup in %" JSON_INTEGER_FORMAT " s\n",
		       json_integer_value(next));
	printf("directory: %s\n", str_or(st, "directory", "?"));
	json_decref(st);
	return 0;
}

static int cmd_list(PvCli *cli, bool as_json)
{
	char *dir = pv_backup_location(cli->cfg);
	PvBackupEntry *list = NULL;
	size_t n = 0;
	PvError err;
	if (pv_backup_list(cli->cfg, &list, &n, &err) != PV_OK) {
		int rc = pv_cli_fail(1, "backup list: %s", err.msg);
		free(dir);
		return rc;
	}
	if (as_json) {
		PvBuf b = {0};
		PvJson j;
		pv_json_init(&j, &b);
		pv_json_arr_open(&j, NULL);
		for (size_t i = 0; i < n; i++)
			pv_backup_entry_json(&j, NULL, &list[i]);
		pv_json_arr_close(&j);
		printf("%s\n", b.data);
		pv_buf_free(&b);
	} else if (n == 0) {
		printf("no backups in %s\n", dir);
	} else {
		printf("%-20s %-10s %-9s %-21s %-20s %-3s %-11s %-11s %-9s %-8s %s\n", "LABEL",
		       "STATUS", "TRIGGER", "INCIDENT", "STARTED", "TL", "START LSN", "STOP LSN",
		       "SIZE", "DURATION", "NOTE");
		for (size_t i = 0; i < n; i++) {
			const PvBackupEntry *e = &list[i];
			char size[32], dur[32], s[32] = "-", t[32] = "-", tl[12] = "-",
			                        started[24] = "-";
			fmt_bytes(size, sizeof size, e->size_bytes);
			fmt_ms(dur, sizeof dur, e->duration_ms > 0 ? e->duration_ms : -1);
			if (e->start_lsn)
				pv_lsn_format(e->start_lsn, s, sizeof s);
			if (e->stop_lsn)
				pv_lsn_format(e->stop_lsn, t, sizeof t);
			if (e->timeline)
				snprintf(tl, sizeof tl, "%d", e->timeline);
			if (e->start_ts[0])
				snprintf(started, sizeof started, "%.19sZ", e->start_ts);
			printf("%-20s %-10s %-9s %-21s %-20s %-3s %-11s %-11s %-9s %-8s %s\n",
			       e->label, pv_backup_status_name(e->status),
			       e->trigger[0] ? e->trigger : "-", e->incident[0] ? e->incident : "-",
			       started, tl, s, t, size, dur, e->error);
		}
	}
	free(list);
	free(dir);
	return 0;
}

int pv_cmd_backup(PvCli *cli, int argc, char **argv)
{
	bool wait = false, as_json = false;
	const char *sub = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
	int first = sub ? 2 : 1;
	const char *label = NULL;
	for (int i = first; i < argc; i++) {
		if (strcmp(argv[i], "--wait") == 0 && !sub)
			wait = true;
		else if (strcmp(argv[i], "--json") == 0 && sub &&
		         (strcmp(sub, "list") == 0 || strcmp(sub, "status") == 0))
			as_json = true;
		else if (sub && strcmp(sub, "verify") == 0 && !label && argv[i][0] != '-')
			label = argv[i];
		else
			return pv_cli_fail(2, "backup: unexpected argument %s (%s)", argv[i],
			                   BACKUP_USAGE);
	}
	if (!sub)
		return cmd_start(cli, wait);
	if (strcmp(sub, "list") == 0)
		return cmd_list(cli, as_json);
	if (strcmp(sub, "status") == 0)
		return cmd_status(cli, as_json);
	if (strcmp(sub, "verify") == 0) {
		if (!label)
			return pv_cli_fail(
			    2, "backup verify: a LABEL is required (see pgvigil backup list)");
		return cmd_verify(cli, label);
	}
	return pv_cli_fail(2, "backup: unknown subcommand %s (%s)", sub, BACKUP_USAGE);
}
