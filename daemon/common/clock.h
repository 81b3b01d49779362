/*
 * clock: the process's only readers of time.  core/ never calls these; it takes "now" as an
 * argument.  Monotonic milliseconds for deadlines and durations, UTC wall time for records.
 */
#ifndef PV_COMMON_CLOCK_H
#define PV_COMMON_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t pv_clock_mono_ms(void);
int64_t pv_clock_wall_us(void);
/* "2026-11-25T17:34:55.123456Z" (needs 28 bytes). */
void pv_clock_format_utc(int64_t wall_us, char *out, size_t size);

#endif
