#include "ctl/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/json.h"

#define PV_CTL_MAX_LINE (64 * 1024)

static PvStatus make_addr(const char *path, struct sockaddr_un *sa, PvError *err)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa->sun_path)
		return pv_error_set(err, PV_ERR_CONFIG, "%s: socket path too long (max %zu)", path,
		                    sizeof sa->sun_path - 1);
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return PV_OK;
}

PvStatus pv_ctl_listen(const char *path, int *fd, PvError *err)
{
	struct sockaddr_un sa;
	PvStatus st = make_addr(path, &sa, err);
	if (st != PV_OK)
		return st;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return pv_error_set(err, PV_ERR_IO, "socket: %s", strerror(errno));
	/* The pidfile lock is held, so a socket file left here is stale. */
	unlink(path);
	mode_t old = umask(0177);
	int rc = bind(s, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (rc != 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: bind: %s", path, strerror(errno));
		close(s);
		return st;
	}
	if (chmod(path, 0600) != 0 || listen(s, 16) != 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: listen: %s", path, strerror(errno));
		close(s);
		return st;
	}
	*fd = s;
	return PV_OK;
}

PvStatus pv_ctl_accept(int listen_fd, int timeout_ms, PvCtlRequest *req, PvError *err)
{
	memset(req, 0, sizeof *req);
	req->fd = -1;
	int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return pv_error_set(err, PV_ERR_BUSY, "no pending request");
		return pv_error_set(err, PV_ERR_IO, "accept: %s", strerror(errno));
	}
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		close(c);
		return pv_error_set(err, PV_ERR_IO, "SO_PEERCRED: %s", strerror(errno));
	}
	req->fd = c;
	req->uid = cred.uid;
	req->pid = cred.pid;
	if (cred.uid != 0 && cred.uid != geteuid()) {
		pv_ctl_respond(req, "{\"ok\":false,\"error\":\"permission denied: only root or the "
		                    "daemon's user may use the control socket\"}");
		return pv_error_set(err, PV_ERR_REFUSED, "refused control request from uid %u",
		                    (unsigned)cred.uid);
	}
	int fl = fcntl(c, F_GETFL);
	fcntl(c, F_SETFL, fl | O_NONBLOCK);

	PvBuf line = {0};
	int64_t deadline = pv_clock_mono_ms() + timeout_ms;
	for (;;) {
		char chunk[4096];
		ssize_t n = read(c, chunk, sizeof chunk);
		if (n > 0) {
			pv_buf_append(&line, chunk, (size_t)n);
			char *nl = memchr(line.data, '\n', line.len);
			if (nl) {
				*nl = '\0';
				break;
			}
			if (line.len > PV_CTL_MAX_LINE)
				break;
			continue;
		}
		if (n == 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			break;
		int wait = (int)(deadline - pv_clock_mono_ms());
		if (wait <= 0)
			break;
		struct pollfd pfd = {.fd = c, .events = POLLIN};
		(void)poll(&pfd, 1, wait);
	}
	if (!line.data || !line.data[0] || line.len > PV_CTL_MAX_LINE) {
		pv_buf_free(&line);
		pv_ctl_respond(req, "{\"ok\":false,\"error\":\"no request line\"}");
		return pv_error_set(err, PV_ERR_PROTOCOL, "control client sent no request line");
	}
	req->line = pv_buf_steal(&line);
	return PV_OK;
}

static void write_all(int fd, const char *s, size_t n)
{
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

void pv_ctl_respond(PvCtlRequest *req, const char *json)
{
	if (req->fd >= 0) {
		struct timeval tv = {.tv_sec = 2};
		setsockopt(req->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		write_all(req->fd, json, strlen(json));
		write_all(req->fd, "\n", 1);
		close(req->fd);
	}
	req->fd = -1;
	free(req->line);
	req->line = NULL;
}

void pv_ctl_respond_error(PvCtlRequest *req, const char *msg)
{
	PvBuf b = {0};
	pv_buf_puts(&b, "{\"ok\":false,\"error\":");
	pv_json_escape(&b, msg ? msg : "");
	pv_buf_putc(&b, '}');
	pv_ctl_respond(req, b.data);
	pv_buf_free(&b);
}

PvStatus pv_ctl_call(const char *path, const char *request_json, int timeout_ms, char **response,
                     PvError *err)
{
	struct sockaddr_un sa;
	PvStatus st = make_addr(path, &sa, err);
	PvBuf buf = {0};
	if (st != PV_OK)
		return st;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return pv_error_set(err, PV_ERR_IO, "socket: %s", strerror(errno));
	if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
		int e = errno;
		close(s);
		if (e == ENOENT || e == ECONNREFUSED)
			return pv_error_set(err, PV_ERR_NOT_FOUND,
			                    "pgvigild is not running (no daemon listening on %s)", path);
		return pv_error_set(err, PV_ERR_IO, "%s: connect: %s", path, strerror(e));
	}
	write_all(s, request_json, strlen(request_json));
	write_all(s, "\n", 1);
	int64_t deadline = pv_clock_mono_ms() + timeout_ms;
	for (;;) {
		int wait = (int)(deadline - pv_clock_mono_ms());
		if (wait <= 0) {
			st = pv_error_set(err, PV_ERR_TIMEOUT, "no answer from pgvigild within %d ms",
			                  timeout_ms);
			break;
		}
		struct pollfd pfd = {.fd = s, .events = POLLIN};
		int n = poll(&pfd, 1, wait);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			continue;
		char chunk[4096];
		ssize_t r = read(s, chunk, sizeof chunk);
		if (r > 0) {
			pv_buf_append(&buf, chunk, (size_t)r);
			continue;
		}
		if (r == 0 && buf.len > 0)
			break;
		if (r < 0 && errno == EINTR)
			continue;
		st = pv_error_set(err, PV_ERR_PROTOCOL, "pgvigild closed the connection without an answer");
		break;
	}
	close(s);
	if (st != PV_OK) {
		pv_buf_free(&buf);
		return st;
	}
	if (buf.len && buf.data[buf.len - 1] == '\n')
		buf.data[--buf.len] = '\0';
	*response = pv_buf_steal(&buf);
	return PV_OK;
}
