/*
 * fileio: files pgvigil writes, written atomically (temp file in the same directory, write,
 * fsync, rename over the target, fsync the directory), so a reader sees the old file or the
 * new one, never a mix, even across a crash.
 */
#ifndef PV_COMMON_FILEIO_H
#define PV_COMMON_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

PvStatus pv_file_write_atomic(const char *path, const char *data, size_t len, mode_t mode,
                              PvError *err) PV_MUSTCHECK;
/* Reads a whole file into a NUL-terminated malloc'd buffer. */
PvStatus pv_file_read_all(const char *path, char **out, size_t *len, PvError *err) PV_MUSTCHECK;
/* fsyncs the directory holding path. */
PvStatus pv_file_sync_dir(const char *path, PvError *err) PV_MUSTCHECK;

#endif
