#include "io/pgcmd.h"

#include <libpq-fe.h>
#include <string.h>

#include "common/buf.h"

static void append_kv(PvBuf *b, const char *k, const char *v)
{
	if (b->len)
		pv_buf_putc(b, ' ');
	pv_buf_printf(b, "%s='", k);
	for (const char *p = v; *p; p++) {
		if (*p == '\'' || *p == '\\')
			pv_buf_putc(b, '\\');
		pv_buf_putc(b, *p);
	}
	pv_buf_putc(b, '\'');
}

PvStatus pv_pgcmd_conninfo(const char *conninfo, const char *appname, char **out, char **password,
                           PvError *err)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	PvBuf b = {0};
	*out = NULL;
	*password = NULL;
	if (!opts) {
		PvStatus st = pv_error_set(err, PV_ERR_CONFIG, "invalid conninfo: %s",
		                           msg ? msg : "out of memory");
		size_t n = err ? strlen(err->msg) : 0;
		if (n && err->msg[n - 1] == '\n')
			err->msg[n - 1] = '\0';
		PQfreemem(msg);
		return st;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (strcmp(o->keyword, "password") == 0) {
			*password = pv_xstrdup(o->val);
			continue;
		}
		if (appname && strcmp(o->keyword, "application_name") == 0)
			continue;
		append_kv(&b, o->keyword, o->val);
	}
	if (appname)
		append_kv(&b, "application_name", appname);
	PQconninfoFree(opts);
	*out = pv_buf_steal(&b);
	return PV_OK;
}
