#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"

PvStatus pv_file_sync_dir(const char *path, PvError *err)
{
	char *copy = pv_xstrdup(path);
	const char *dir = dirname(copy);
	PvStatus st = PV_OK;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
		goto out;
	}
	if (fsync(fd) != 0)
		st = pv_error_set(err, PV_ERR_IO, "%s: fsync: %s", dir, strerror(errno));
	close(fd);
out:
	free(copy);
	return st;
}

PvStatus pv_file_write_atomic(const char *path, const char *data, size_t len, mode_t mode,
                              PvError *err)
{
	PvStatus st = PV_OK;
	char *tmp = pv_xasprintf("%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
		goto out;
	}
	if (fchmod(fd, mode) != 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: chmod: %s", tmp, strerror(errno));
		goto out_close;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			st = pv_error_set(err, PV_ERR_IO, "%s: write: %s", tmp, strerror(errno));
			goto out_close;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
		goto out_close;
	}
out_close:
	if (close(fd) != 0 && st == PV_OK)
		st = pv_error_set(err, PV_ERR_IO, "%s: close: %s", tmp, strerror(errno));
	if (st == PV_OK && rename(tmp, path) != 0)
		st = pv_error_set(err, PV_ERR_IO, "%s: rename: %s", path, strerror(errno));
	if (st != PV_OK)
		unlink(tmp);
	else
		st = pv_file_sync_dir(path, err);
out:
	free(tmp);
	return st;
}

PvStatus pv_file_read_all(const char *path, char **out, size_t *len, PvError *err)
{
	PvBuf b = {0};
	char chunk[8192];
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return pv_error_set(err, errno == ENOENT ? PV_ERR_NOT_FOUND : PV_ERR_IO, "%s: %s", path,
		                    strerror(errno));
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
		pv_buf_append(&b, chunk, n);
	int bad = ferror(fp);
	fclose(fp);
	if (bad) {
		pv_buf_free(&b);
		return pv_error_set(err, PV_ERR_IO, "%s: read error", path);
	}
	if (len)
		*len = b.len;
	*out = pv_buf_steal(&b);
	return PV_OK;
}
