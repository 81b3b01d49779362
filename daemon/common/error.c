#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void pv_strlcpy_(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static const char *const status_names[] = {
#define PV_X(code, name, exit) name,
	PV_STATUS_LIST(PV_X)
#undef PV_X
};

static const int status_exits[] = {
#define PV_X(code, name, exit) exit,
	PV_STATUS_LIST(PV_X)
#undef PV_X
};

const char *pv_status_name(PvStatus s)
{
	return (s >= 0 && s < PV_STATUS_COUNT) ? status_names[s] : "unknown";
}

int pv_status_exit(PvStatus s)
{
	return (s >= 0 && s < PV_STATUS_COUNT) ? status_exits[s] : 1;
}

PvStatus pv_error_set(PvError *err, PvStatus code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		err->code = code;
	}
	return code;
}

PvStatus pv_error_prefix(PvError *err, const char *fmt, ...)
{
	char ctx[512], old[sizeof err->msg];
	va_list ap;

	if (!err)
		return PV_ERR_STATE;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof ctx, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	size_t n = strlen(ctx);
	if (n > sizeof err->msg - 3)
		n = sizeof err->msg - 3;
	memcpy(err->msg, ctx, n);
	memcpy(err->msg + n, ": ", 2);
	pv_strlcpy_(err->msg + n + 2, old, sizeof err->msg - n - 2);
	return err->code;
}

void pv_error_clear(PvError *err)
{
	if (err) {
		err->code = PV_OK;
		err->msg[0] = '\0';
	}
}
