#include "io/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

PvStatus pv_sd_notify(const char *path, const char *state, PvError *err)
{
	struct sockaddr_un sa;
	size_t n;

	if (!path)
		path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return PV_OK;
	if (path[0] != '/' && path[0] != '@')
		return pv_error_set(err, PV_ERR_CONFIG,
		                    "NOTIFY_SOCKET=%s: neither a path nor an abstract name", path);
	n = strlen(path);
	if (n >= sizeof sa.sun_path)
		return pv_error_set(err, PV_ERR_CONFIG, "NOTIFY_SOCKET=%s: too long", path);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace: no NUL at the end, the length says */
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));

	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return pv_error_set(err, PV_ERR_IO, "notify socket: %s", strerror(errno));
	ssize_t sent;
	do
		sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	while (sent < 0 && errno == EINTR);
	int e = errno;
	close(fd);
	if (sent < 0)
		return pv_error_set(err, PV_ERR_IO, "NOTIFY_SOCKET=%s: %s", path, strerror(e));
	return PV_OK;
}

bool pv_sd_enabled(void)
{
	const char *s = getenv("NOTIFY_SOCKET");
	return s && *s;
}

int64_t pv_sd_watchdog_ms(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	char *end;

	if (!usec || !*usec)
		return 0;
	if (pid && *pid) {
		long p = strtol(pid, &end, 10);
		if (*end || p != (long)getpid())
			return 0;
	}
	errno = 0;
	unsigned long long us = strtoull(usec, &end, 10);
	if (errno || *end || us == 0)
		return 0;
	int64_t ms = (int64_t)(us / 1000);
	return ms > 0 ? ms : 1;
}
