/*
 * sd_listen: a stand-in for systemd's notification socket, for t_ops_systemd.sh.
 *
 *   sd_listen SOCKET SECONDS
 *
 * Binds an AF_UNIX datagram socket at SOCKET (a path, or an abstract name written "@name"),
 * prints "ready" on stderr once bound, then prints every datagram it receives within SECONDS
 * on stdout as one line: milliseconds since it was bound, a space, the message with its
 * newlines written as '|'.  Exits 0 after SECONDS, or as soon as a datagram holds STOPPING=1.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: sd_listen SOCKET SECONDS\n");
		return 2;
	}
	const char *name = argv[1];
	long secs = strtol(argv[2], NULL, 10);
	struct sockaddr_un sa;
	size_t n = strlen(name);
	if (n == 0 || n >= sizeof sa.sun_path) {
		fprintf(stderr, "sd_listen: bad socket name\n");
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, name, n);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	else
		unlink(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) != 0) {
		fprintf(stderr, "sd_listen: %s: %s\n", name, strerror(errno));
		return 1;
	}
	fprintf(stderr, "ready\n");
	long long start = now_ms(), end = start + secs * 1000;
	int rc = 0;
	for (;;) {
		long long left = end - now_ms();
		if (left <= 0)
			break;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = 1;
			break;
		}
		if (r == 0)
			break;
		char buf[4096];
		ssize_t got = recv(fd, buf, sizeof buf - 1, 0);
		if (got < 0)
			continue;
		buf[got] = '\0';
		for (ssize_t i = 0; i < got; i++)
			if (buf[i] == '\n')
				buf[i] = '|';
		printf("%lld %s\n", now_ms() - start, buf);
		fflush(stdout);
		if (strstr(buf, "STOPPING=1"))
			break;
	}
	close(fd);
	if (name[0] != '@')
		unlink(name);
	return rc;
}
