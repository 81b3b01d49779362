/*
 * config_print: the other walks of the option table over a loaded PvConfig: freeing it, and
 * printing it back in libconfig syntax (defaults filled in, conninfos redacted) so that
 * pv_config_load reads the output to the same configuration.
 */
#include <stdlib.h>
#include <string.h>

#include "common/redact.h"
#include "config/config.h"
#include "config/config_internal.h"

void pv_config_put_quoted(PvBuf *b, const char *s)
{
	pv_buf_putc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			pv_buf_puts(b, "\\\"");
			break;
		case '\\':
			pv_buf_puts(b, "\\\\");
			break;
		case '\n':
			pv_buf_puts(b, "\\n");
			break;
		case '\r':
			pv_buf_puts(b, "\\r");
			break;
		case '\t':
			pv_buf_puts(b, "\\t");
			break;
		case '\f':
			pv_buf_puts(b, "\\f");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				pv_buf_printf(b, "\\x%02x", *p);
			else
				pv_buf_putc(b, (char)*p);
		}
	}
	pv_buf_putc(b, '"');
}

static void free_children(const char *tpath, char *base)
{
	for (size_t i = 0; i < pv_noptions; i++) {
		const PvOption *o = &pv_options[i];
		if (!pv_option_is_child(o, tpath))
			continue;
		switch (o->type) {
		case PV_OPT_GROUP:
			free_children(o->path, base);
			break;
		case PV_OPT_LIST:
			for (int e = 0; e < o->max; e++)
				free_children(o->path, base + o->offset + (size_t)e * o->elem_size);
			break;
		case PV_OPT_CONNINFO:
			free(*(char **)(base + o->aux));
			free(*(char **)(base + o->offset));
			break;
		case PV_OPT_STRING: {
			char *s = *(char **)(base + o->offset);
			if (s && (o->flags & PV_OPT_SECRET))
				explicit_bzero(s, strlen(s));
			free(s);
			break;
		}
		default:
			break;
		}
	}
}

void pv_config_free(PvConfig *cfg)
{
	if (!cfg)
		return;
	free_children("", (char *)cfg);
	free(cfg->path);
	free(cfg);
}

static void indent(PvBuf *out, int depth)
{
	for (int i = 0; i < depth; i++)
		pv_buf_putc(out, '\t');
}

static void print_children(PvBuf *out, const char *tpath, const char *base, int depth)
{
	bool first = true;
	for (size_t i = 0; i < pv_noptions; i++) {
		const PvOption *o = &pv_options[i];
		if (!pv_option_is_child(o, tpath))
			continue;
		if (o->type == PV_OPT_GROUP && (o->flags & PV_OPT_PRESENCE) &&
		    !*(const bool *)(base + o->aux))
			continue;
		if (depth == 0 && !first)
			pv_buf_putc(out, '\n');
		first = false;
		indent(out, depth);
		pv_buf_printf(out, "%s = ", pv_option_leaf(o));
		switch (o->type) {
		case PV_OPT_GROUP:
			pv_buf_puts(out, "{\n");
			print_children(out, o->path, base, depth + 1);
			indent(out, depth);
			pv_buf_puts(out, "};\n");
			break;
		case PV_OPT_LIST: {
			int n = *(const int *)(base + o->aux);
			pv_buf_puts(out, "(\n");
			for (int e = 0; e < n; e++) {
				indent(out, depth + 1);
				pv_buf_puts(out, "{\n");
				print_children(out, o->path,
				               base + o->offset + (size_t)e * o->elem_size,
				               depth + 2);
				indent(out, depth + 1);
				pv_buf_puts(out, e + 1 < n ? "},\n" : "}\n");
			}
			indent(out, depth);
			pv_buf_puts(out, ");\n");
			break;
		}
		case PV_OPT_INT:
			pv_buf_printf(out, "%d;\n", *(const int *)(base + o->offset));
			break;
		case PV_OPT_ENUM:
			pv_config_put_quoted(out, o->en->name(*(const int *)(base + o->offset)));
			pv_buf_puts(out, ";\n");
			break;
		case PV_OPT_NAME:
			pv_config_put_quoted(out, base + o->offset);
			pv_buf_puts(out, ";\n");
			break;
		case PV_OPT_CONNINFO:
			pv_config_put_quoted(out, *(char *const *)(base + o->aux));
			pv_buf_puts(out, ";\n");
			break;
		case PV_OPT_STRING: {
			const char *s = *(char *const *)(base + o->offset);
			pv_config_put_quoted(out, (o->flags & PV_OPT_SECRET) && s && *s ? PV_REDACTED : s);
			pv_buf_puts(out, ";\n");
			break;
		}
		}
	}
}

void pv_config_print(const PvConfig *cfg, PvBuf *out)
{
	print_children(out, "", (const char *)cfg, 0);
}

int pv_config_node_index(const PvConfig *cfg, const char *name)
{
	for (int i = 0; i < cfg->nnodes; i++)
		if (strcmp(cfg->nodes[i].name, name) == 0)
			return i;
	return -1;
}
