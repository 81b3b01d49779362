#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"

static FILE *log_fp;
static PvLogLevel log_level = PV_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warning", "error"};

const char *pv_log_level_name(PvLogLevel l)
{
	return (l >= PV_LOG_DEBUG && l <= PV_LOG_ERROR) ? level_names[l] : "unknown";
}

int pv_log_level_parse(const char *name)
{
	for (int i = 0; i <= PV_LOG_ERROR; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

PvStatus pv_log_open(const char *path, PvLogLevel level, PvError *err)
{
	FILE *fp = NULL;
	if (path && *path) {
		fp = fopen(path, "ae");
		if (!fp)
			return pv_error_set(err, PV_ERR_IO, "%s: cannot open log: %s", path, strerror(errno));
		setvbuf(fp, NULL, _IOLBF, 0);
	}
	pv_log_close();
	log_fp = fp;
	log_level = level;
	return PV_OK;
}

void pv_log_close(void)
{
	if (log_fp)
		fclose(log_fp);
	log_fp = NULL;
}

void pv_log(PvLogLevel level, const char *fmt, ...)
{
	if (level < log_level)
		return;
	FILE *fp = log_fp ? log_fp : stderr;
	char ts[32];
	pv_clock_format_utc(pv_clock_wall_us(), ts, sizeof ts);
	va_list ap;
	va_start(ap, fmt);
	fprintf(fp, "%s %s: ", ts, pv_log_level_name(level));
	vfprintf(fp, fmt, ap);
	fputc('\n', fp);
	va_end(ap);
	fflush(fp);
}
