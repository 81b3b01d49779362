/*
 * config_internal: what config.c, config_table.c and config_scan.c share; not for other modules.
 *
 * The option table is one flat array of PvOption rows, parents before children, addressed by
 * full dotted path ("probe.interval_ms", "cluster.nodes.priority").  A row's offset is relative
 * to its base: the PvConfig for rows outside lists, the list element (PvNodeConfig, PvPoolerDb)
 * for rows under a PV_OPT_LIST row.
 */
#ifndef PV_CONFIG_CONFIG_INTERNAL_H
#define PV_CONFIG_CONFIG_INTERNAL_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

typedef enum {
	PV_OPT_GROUP,    /* a group of settings (children are the rows below it) */
	PV_OPT_LIST,     /* a list of groups; offset: the array, aux: the int count */
	PV_OPT_INT,      /* int, range min..max */
	PV_OPT_STRING,   /* char *, length min..max bytes, no control characters */
	PV_OPT_NAME,     /* char[PV_NAME_MAX], [A-Za-z0-9_.-]{1,63} */
	PV_OPT_CONNINFO, /* char * checked by PQconninfoParse; aux: the redacted char * twin */
	PV_OPT_ENUM,     /* int, one of a name table */
} PvOptType;

/* Row flags. */
#define PV_OPT_REQUIRED 0x01 /* no default: must be given when its group is */
#define PV_OPT_PRESENCE 0x02 /* GROUP: optional, aux is a bool set when it is given */
#define PV_OPT_SECRET 0x04   /* STRING: a secret: printed as ******** when set, never shown */

typedef struct {
	int (*parse)(const char *name); /* -1 when unknown */
	const char *(*name)(int value);
	int count; /* values are 0..count-1 */
} PvOptEnum;

typedef struct {
	const char *path;
	PvOptType type;
	int flags;
	const char *def;      /* default, as it would be written (ints in decimal) */
	const char *def_from; /* STRING: default is this sibling's value followed by def */
	int min, max;         /* INT: range; STRING: length in bytes; LIST: element count */
	size_t offset;
	size_t aux;
	size_t elem_size;    /* LIST */
	const PvOptEnum *en; /* ENUM */
	const char *noun;    /* LIST: "node" */
	const char *unique;  /* LIST: path of the member whose value must be unique */
	const char *doc;
} PvOption;

extern const PvOption pv_options[];
extern const size_t pv_noptions;

/* Appends s in double quotes, escaped the way libconfig reads strings back. */
void pv_config_put_quoted(PvBuf *b, const char *s);

/* The row for path, or NULL. */
const PvOption *pv_option_find(const char *path);
/* The last component of a row's path. */
const char *pv_option_leaf(const PvOption *o);
/* True when o is a direct child of the row path parent ("" for the top level). */
bool pv_option_is_child(const PvOption *o, const char *parent);

/*
 * libconfig 1.5 reads an integer literal that does not fit in an int by silently wrapping it
 * (3000000000 becomes -1294967296).  The scan re-reads the source text, finds every integer
 * assignment, and hooks the literal's text onto each int setting whose literal overflowed.
 */
typedef struct {
	struct PvIntLit *lits;
	size_t nlits, cap;
	char **scanned; /* files already scanned */
	size_t nscanned;
} PvIntScan;

/* read(file) returns the text of a file as libconfig named it (malloc'd), or NULL. */
void pv_int_scan(PvIntScan *s, config_setting_t *root, char *(*read)(void *arg, const char *file),
                 void *arg);
/* The literal as written when it overflowed an int, else NULL. */
const char *pv_int_scan_overflow(const config_setting_t *setting);
void pv_int_scan_free(PvIntScan *s);

#endif
