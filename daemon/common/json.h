/*
 * json: a small streaming JSON writer onto a PvBuf (reading is left to jansson).
 *
 * Keys are given with each value; pass key NULL inside arrays and for the top-level value.
 * Strings are escaped per RFC 8259; bytes that are not valid UTF-8 become U+FFFD, so the
 * output is always valid JSON whatever a server or a user handed us.
 */
#ifndef PV_COMMON_JSON_H
#define PV_COMMON_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

#define PV_JSON_MAX_DEPTH 32

typedef struct {
	PvBuf *out;
	int depth;
	bool need_comma[PV_JSON_MAX_DEPTH];
} PvJson;

void pv_json_init(PvJson *j, PvBuf *out);
void pv_json_obj_open(PvJson *j, const char *key);
void pv_json_obj_close(PvJson *j);
void pv_json_arr_open(PvJson *j, const char *key);
void pv_json_arr_close(PvJson *j);
/* val NULL writes null. */
void pv_json_str(PvJson *j, const char *key, const char *val);
void pv_json_int(PvJson *j, const char *key, int64_t v);
void pv_json_double(PvJson *j, const char *key, double v);
void pv_json_bool(PvJson *j, const char *key, bool v);
void pv_json_null(PvJson *j, const char *key);
/* Inserts already-encoded JSON (trusted: produced by this writer). */
void pv_json_raw(PvJson *j, const char *key, const char *json);

/* Appends s as a quoted, escaped JSON string. */
void pv_json_escape(PvBuf *out, const char *s);

#endif
