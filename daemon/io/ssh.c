#include "io/ssh.h"

#include <errno.h>
#include <libssh2.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

#define PV_SSH_DISCONNECT_MS 100

struct PvSsh {
	char *host;
	char *user;
	char *key;        /* NULL: agent */
	char *passphrase; /* NULL: none */
	char *known_hosts;
	int port;
	int connect_timeout_ms;
	char name[300];    /* "host:port" */
	char hostkey[128]; /* "TYPE SHA256:..." of the last handshake */
	int fd;
	LIBSSH2_SESSION *session;
};

/* ---- pure helpers ---- */

void pv_ssh_quote(PvBuf *b, const char *arg)
{
	pv_buf_putc(b, '\'');
	for (const char *p = arg; *p; p++) {
		if (*p == '\'')
			pv_buf_puts(b, "'\\''");
		else
			pv_buf_putc(b, *p);
	}
	pv_buf_putc(b, '\'');
}

char *pv_ssh_command(const char *const *argv)
{
	PvBuf b = {0};
	for (size_t i = 0; argv[i]; i++) {
		if (i)
			pv_buf_putc(&b, ' ');
		pv_ssh_quote(&b, argv[i]);
	}
	if (!b.data)
		pv_buf_puts(&b, "");
	return pv_buf_steal(&b);
}

void pv_ssh_fingerprint(const unsigned char hash[32], char *out, size_t size)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char text[8 + 44] = "SHA256:";
	size_t n = 7;
	for (size_t i = 0; i < 32; i += 3) {
		unsigned v = (unsigned)hash[i] << 16;
		size_t left = 32 - i;
		if (left > 1)
			v |= (unsigned)hash[i + 1] << 8;
		if (left > 2)
			v |= hash[i + 2];
		text[n++] = b64[(v >> 18) & 63];
		text[n++] = b64[(v >> 12) & 63];
		if (left > 1)
			text[n++] = b64[(v >> 6) & 63];
		if (left > 2)
			text[n++] = b64[v & 63];
	}
	text[n] = '\0';
	pv_strlcpy(out, text, size);
}

const char *pv_ssh_hostkey_type_name(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		return "ssh-rsa";
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		return "ssh-dss";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
		return "ecdsa-sha2-nistp256";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
		return "ecdsa-sha2-nistp384";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		return "ecdsa-sha2-nistp521";
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		return "ssh-ed25519";
	default:
		return "unknown";
	}
}

/* The known_hosts key type bits for a host key type, so entries of other types don't count. */
static int knownhost_key_bits(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		return LIBSSH2_KNOWNHOST_KEY_ED25519;
	default:
		return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
	}
}

void pv_ssh_format_hostport(const char *host, int port, char *out, size_t size)
{
	snprintf(out, size, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

/* ---- results ---- */

void pv_ssh_result_free(PvSshResult *res)
{
	if (!res)
		return;
	pv_buf_free(&res->out);
	pv_buf_free(&res->err);
}

bool pv_ssh_result_ok(const PvSshResult *res)
{
	return res->exit_status == 0 && res->exit_signal[0] == '\0';
}

void pv_ssh_result_describe(const PvSshResult *res, char *out, size_t size)
{
	if (res->exit_signal[0])
		snprintf(out, size, "killed by signal %s", res->exit_signal);
	else if (res->exit_status < 0)
		snprintf(out, size, "no exit status");
	else
		snprintf(out, size, "exit %d", res->exit_status);
}

/* ---- the session ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc = -1;

static void init_library(void)
{
	init_rc = libssh2_init(0);
}

static char *dup_or_null(const char *s)
{
	return s && *s ? pv_xstrdup(s) : NULL;
}

PvSsh *pv_ssh_new(const PvSshTarget *t)
{
	pthread_once(&init_once, init_library);
	PvSsh *s = pv_xcalloc(1, sizeof *s);
	s->host = pv_xstrdup(t->host ? t->host : "");
	s->user = pv_xstrdup(t->user ? t->user : "");
	s->key = dup_or_null(t->key);
	s->passphrase = dup_or_null(t->passphrase);
	s->known_hosts = pv_xstrdup(t->known_hosts ? t->known_hosts : "");
	s->port = t->port > 0 ? t->port : 22;
	s->connect_timeout_ms = t->connect_timeout_ms;
	s->fd = -1;
	pv_ssh_format_hostport(s->host, s->port, s->name, sizeof s->name);
	return s;
}

const char *pv_ssh_name(const PvSsh *s)
{
	return s->name;
}

const char *pv_ssh_hostkey(const PvSsh *s)
{
	return s->hostkey;
}

bool pv_ssh_connected(const PvSsh *s)
{
	return s->session != NULL;
}

/* Frees the session without waiting for anything: the socket is shut down first, so no
 * libssh2 call below can wait for it (sends fail, reads see EOF). */
static void drop_session(PvSsh *s)
{
	if (s->fd >= 0)
		shutdown(s->fd, SHUT_RDWR);
	if (s->session) {
		for (int i = 0; i < 100 && libssh2_session_free(s->session) == LIBSSH2_ERROR_EAGAIN;
		     i++) {
		}
		s->session = NULL;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

void pv_ssh_close(PvSsh *s)
{
	if (s)
		drop_session(s);
}

/* The last libssh2 error text of the session. */
static const char *last_error(PvSsh *s)
{
	char *msg = NULL;
	if (!s->session)
		return "no session";
	libssh2_session_last_error(s->session, &msg, NULL, 0);
	return msg && *msg ? msg : "unknown error";
}

/*
 * Waits until the socket is ready in the directions libssh2 is blocked on.  PV_ERR_TIMEOUT
 * (err not set: the caller words it) once the deadline has passed.
 */
static PvStatus wait_socket(PvSsh *s, int64_t deadline)
{
	int dir = libssh2_session_block_directions(s->session);
	struct pollfd p = {.fd = s->fd};
	if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
		p.events |= POLLIN;
	if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		p.events |= POLLOUT;
	for (;;) {
		int64_t left = deadline - pv_clock_mono_ms();
		if (left <= 0)
			return PV_ERR_TIMEOUT;
		/* no direction given: retry soon rather than wait for nothing */
		int ms = !p.events ? 10 : left > INT_MAX ? INT_MAX : (int)left;
		if (!p.events)
			p.events = POLLIN;
		int r = poll(&p, 1, ms);
		if (r > 0 || (r == 0 && ms == 10))
			return PV_OK;
		if (r < 0 && errno != EINTR)
			return PV_ERR_IO;
	}
}

static PvStatus timeout_error(PvSsh *s, PvError *err, const char *what, int64_t start,
                              int64_t deadline)
{
	return pv_error_set(err, PV_ERR_TIMEOUT, "%s: %s: no answer within %lld ms", s->name, what,
	                    (long long)(deadline - start));
}

/* ---- name resolution under the deadline ---- */

typedef struct PvLookup {
	struct gaicb cb;
	struct addrinfo hints;
	char service[16];
	char *name;
	struct PvLookup *next;
} PvLookup;

/* Lookups abandoned at their deadline that the resolver could not cancel: freed once done. */
static PvLookup *orphans;

static void lookup_free(PvLookup *l)
{
	if (l->cb.ar_result)
		freeaddrinfo(l->cb.ar_result);
	free(l->name);
	free(l);
}

static void reap_orphans(void)
{
	PvLookup **pp = &orphans;
	while (*pp) {
		PvLookup *l = *pp;
		if (gai_error(&l->cb) == EAI_INPROGRESS) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		lookup_free(l);
	}
}

static PvStatus resolve(PvSsh *s, int64_t start, int64_t deadline, struct addrinfo **out,
                        PvError *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	char service[16];
	snprintf(service, sizeof service, "%d", s->port);
	int rc = getaddrinfo(s->host, service, &hints, out);
	if (rc == 0)
		return PV_OK;
	if (rc != EAI_NONAME)
		return pv_error_set(err, PV_ERR_IO, "%s: %s", s->name, gai_strerror(rc));

	/* a name: ask the resolver without blocking past the deadline */
	reap_orphans();
	PvLookup *l = pv_xcalloc(1, sizeof *l);
	l->name = pv_xstrdup(s->host);
	memcpy(l->service, service, sizeof service);
	l->hints = hints;
	l->hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	l->cb.ar_name = l->name;
	l->cb.ar_service = l->service;
	l->cb.ar_request = &l->hints;
	struct gaicb *list[1] = {&l->cb};
	rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (rc != 0) {
		free(l->name);
		free(l);
		return pv_error_set(err, PV_ERR_IO, "%s: resolve: %s", s->name, gai_strerror(rc));
	}
	while ((rc = gai_error(&l->cb)) == EAI_INPROGRESS) {
		int64_t left = deadline - pv_clock_mono_ms();
		if (left <= 0)
			break;
		struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000L};
		gai_suspend((const struct gaicb *const *)list, 1, &ts);
	}
	if (rc == EAI_INPROGRESS) {
		if (gai_cancel(&l->cb) == EAI_NOTCANCELED) {
			l->next = orphans;
			orphans = l;
		} else {
			lookup_free(l);
		}
		return timeout_error(s, err, "resolving the host name", start, deadline);
	}
	if (rc != 0) {
		lookup_free(l);
		return pv_error_set(err, PV_ERR_IO, "%s: resolve: %s", s->name, gai_strerror(rc));
	}
	*out = l->cb.ar_result;
	l->cb.ar_result = NULL;
	lookup_free(l);
	return PV_OK;
}

/* ---- connecting ---- */

static PvStatus tcp_connect(PvSsh *s, int64_t start, int64_t deadline, PvError *err)
{
	struct addrinfo *ai = NULL;
	PvStatus st = resolve(s, start, deadline, &ai, err);
	if (st != PV_OK)
		return st;
	int last = 0;
	st = PV_ERR_IO;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		                a->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
			last = errno;
			close(fd);
			continue;
		}
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int r;
		for (;;) {
			int64_t left = deadline - pv_clock_mono_ms();
			if (left <= 0) {
				r = 0;
				break;
			}
			r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
			if (r >= 0 || errno != EINTR)
				break;
		}
		if (r == 0) {
			close(fd);
			st = timeout_error(s, err, "connect", start, deadline);
			goto out;
		}
		int soerr = 0;
		socklen_t len = sizeof soerr;
		if (r < 0)
			soerr = errno;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
			soerr = errno;
		if (soerr) {
			last = soerr;
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		s->fd = fd;
		st = PV_OK;
		goto out;
	}
	st = pv_error_set(err, PV_ERR_IO, "%s: connect: %s", s->name,
	                  last ? strerror(last) : "no address");
out:
	freeaddrinfo(ai);
	return st;
}

/* Loops a libssh2 call while it says EAGAIN, waiting on the socket; on timeout jumps to out. */
#define PV_SSH_RETRY(rc, call, what)                                                               \
	while (((rc) = (call)) == LIBSSH2_ERROR_EAGAIN) {                                          \
		if (wait_socket(s, deadline) != PV_OK) {                                           \
			st = timeout_error(s, err, what, start, deadline);                         \
			goto out;                                                                  \
		}                                                                                  \
	}

static PvStatus check_host_key(PvSsh *s, PvError *err)
{
	size_t len = 0;
	int type = 0;
	const char *key = libssh2_session_hostkey(s->session, &len, &type);
	const char *hash = libssh2_hostkey_hash(s->session, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (!key || !hash)
		return pv_error_set(err, PV_ERR_PROTOCOL, "%s: the host sent no host key", s->name);
	char fp[PV_SSH_FINGERPRINT_LEN];
	pv_ssh_fingerprint((const unsigned char *)hash, fp, sizeof fp);
	snprintf(s->hostkey, sizeof s->hostkey, "%s %s", pv_ssh_hostkey_type_name(type), fp);

	char entry[300];
	if (s->port == 22)
		pv_strlcpy(entry, s->host, sizeof entry);
	else
		snprintf(entry, sizeof entry, "[%s]:%d", s->host, s->port);

	PvStatus st = PV_OK;
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(s->session);
	if (!kh)
		return pv_error_set(err, PV_ERR_IO, "%s: known hosts: %s", s->name, last_error(s));
	if (access(s->known_hosts, R_OK) != 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: known_hosts %s: %s", s->name, s->known_hosts,
		                  strerror(errno));
		goto out;
	}
	if (libssh2_knownhost_readfile(kh, s->known_hosts, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: known_hosts %s: %s", s->name, s->known_hosts,
		                  last_error(s));
		goto out;
	}
	struct libssh2_knownhost *found = NULL;
	int check = libssh2_knownhost_checkp(
	    kh, s->host, s->port, key, len,
	    LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | knownhost_key_bits(type),
	    &found);
	switch (check) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		st = pv_error_set(err, PV_ERR_REFUSED,
		                  "%s: host key mismatch: the host offers %s, not the key %s lists "
		                  "for %s (host reinstalled, or someone in the middle): refused",
		                  s->name, s->hostkey, s->known_hosts, entry);
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		st = pv_error_set(err, PV_ERR_REFUSED,
		                  "%s: unknown host key %s: no entry for %s in %s (check the key "
		                  "out of band, then add it): refused",
		                  s->name, s->hostkey, entry, s->known_hosts);
		break;
	default:
		st = pv_error_set(err, PV_ERR_PROTOCOL, "%s: host key check failed for %s: %s",
		                  s->name, s->hostkey, last_error(s));
		break;
	}
out:
	libssh2_knownhost_free(kh);
	return st;
}

static PvStatus auth_agent(PvSsh *s, int64_t start, int64_t deadline, PvError *err)
{
	PvStatus st = PV_OK;
	int rc = 0, tried = 0;
	const char *sock = getenv("SSH_AUTH_SOCK");
	LIBSSH2_AGENT *agent = libssh2_agent_init(s->session);
	if (!agent)
		return pv_error_set(err, PV_ERR_IO, "%s: ssh-agent: %s", s->name, last_error(s));
	if (libssh2_agent_connect(agent) != 0) {
		st = pv_error_set(
		    err, PV_ERR_IO,
		    "%s: no key file configured and no ssh-agent to ask (SSH_AUTH_SOCK "
		    "%s)",
		    s->name, sock && *sock ? "not answering" : "unset");
		goto free;
	}
	if (libssh2_agent_list_identities(agent) != 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: ssh-agent: cannot list identities: %s",
		                  s->name, last_error(s));
		goto out;
	}
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
		tried++;
		PV_SSH_RETRY(rc, libssh2_agent_userauth(agent, s->user, id), "authentication");
		if (rc == 0)
			goto out;
		prev = id;
	}
	st = pv_error_set(err, PV_ERR_REFUSED,
	                  "%s: authentication as %s refused for all %d ssh-agent identities",
	                  s->name, s->user, tried);
out:
	libssh2_agent_disconnect(agent);
free:
	libssh2_agent_free(agent);
	return st;
}

static PvStatus authenticate(PvSsh *s, int64_t start, int64_t deadline, PvError *err)
{
	PvStatus st = PV_OK;
	int rc;
	if (!s->key)
		return auth_agent(s, start, deadline, err);
	if (access(s->key, R_OK) != 0)
		return pv_error_set(err, PV_ERR_IO, "%s: key %s: %s", s->name, s->key,
		                    strerror(errno));
	PV_SSH_RETRY(rc,
	             libssh2_userauth_publickey_fromfile_ex(s->session, s->user,
	                                                    (unsigned)strlen(s->user), NULL, s->key,
	                                                    s->passphrase ? s->passphrase : ""),
	             "authentication");
	if (rc == LIBSSH2_ERROR_FILE)
		st = pv_error_set(err, PV_ERR_IO, "%s: key %s: %s", s->name, s->key,
		                  s->passphrase
		                      ? "wrong passphrase, or not a private key libssh2 reads"
		                      : "encrypted (no passphrase configured), or not a "
		                        "private key libssh2 reads");
	else if (rc != 0)
		st = pv_error_set(err, PV_ERR_REFUSED,
		                  "%s: authentication as %s with key %s refused: %s", s->name,
		                  s->user, s->key, last_error(s));
out:
	return st;
}

static PvStatus do_connect(PvSsh *s, int64_t start, int64_t deadline, PvError *err)
{
	PvStatus st;
	int rc;
	if (s->connect_timeout_ms > 0 && start + s->connect_timeout_ms < deadline)
		deadline = start + s->connect_timeout_ms;
	s->hostkey[0] = '\0';
	if (init_rc != 0)
		return pv_error_set(err, PV_ERR_IO, "%s: libssh2_init failed", s->name);
	st = tcp_connect(s, start, deadline, err);
	if (st != PV_OK)
		return st;
	s->session = libssh2_session_init();
	if (!s->session) {
		st = pv_error_set(err, PV_ERR_IO, "%s: cannot create an ssh session", s->name);
		goto out;
	}
	libssh2_session_set_blocking(s->session, 0);
	PV_SSH_RETRY(rc, libssh2_session_handshake(s->session, s->fd), "ssh handshake");
	if (rc != 0) {
		st = pv_error_set(err, PV_ERR_PROTOCOL, "%s: ssh handshake: %s", s->name,
		                  last_error(s));
		goto out;
	}
	st = check_host_key(s, err);
	if (st != PV_OK)
		goto out;
	st = authenticate(s, start, deadline, err);
out:
	if (st != PV_OK)
		drop_session(s);
	return st;
}

PvStatus pv_ssh_connect(PvSsh *s, int timeout_ms, PvError *err)
{
	if (s->session)
		return PV_OK;
	if (timeout_ms <= 0)
		return pv_error_set(err, PV_ERR_USAGE, "%s: connect needs a timeout", s->name);
	int64_t start = pv_clock_mono_ms();
	return do_connect(s, start, start + timeout_ms, err);
}

/* ---- running a command ---- */

static PvStatus open_channel(PvSsh *s, int64_t start, int64_t deadline, LIBSSH2_CHANNEL **out,
                             PvError *err)
{
	PvStatus st = PV_OK;
	LIBSSH2_CHANNEL *ch;
	while (!(ch = libssh2_channel_open_session(s->session))) {
		if (libssh2_session_last_errno(s->session) != LIBSSH2_ERROR_EAGAIN)
			return pv_error_set(err, PV_ERR_PROTOCOL, "%s: cannot open a channel: %s",
			                    s->name, last_error(s));
		if (wait_socket(s, deadline) != PV_OK)
			return timeout_error(s, err, "opening a channel", start, deadline);
	}
	*out = ch;
	return st;
}

static void take(PvBuf *b, size_t *dropped, const char *chunk, size_t n)
{
	size_t room = b->len < PV_SSH_OUTPUT_CAP ? PV_SSH_OUTPUT_CAP - b->len : 0;
	size_t keep = n < room ? n : room;
	pv_buf_append(b, chunk, keep);
	*dropped += n - keep;
}

/* Writes all of chunk to fd (blocking). */
static bool write_all(int fd, const char *chunk, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, chunk, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		chunk += w;
		n -= (size_t)w;
	}
	return true;
}

/* Reads stdout (into sink_fd when >= 0) and stderr until EOF. */
static PvStatus drain(PvSsh *s, LIBSSH2_CHANNEL *ch, PvSshResult *res, const char *what,
                      int sink_fd, int64_t start, int64_t deadline, PvError *err)
{
	char chunk[16384];
	PvStatus st = PV_OK;
	for (;;) {
		bool progress = false;
		for (int stream = 0; stream < 2; stream++) {
			ssize_t n;
			while ((n = libssh2_channel_read_ex(ch, stream, chunk, sizeof chunk)) > 0) {
				progress = true;
				if (stream == 0 && sink_fd >= 0) {
					if (!write_all(sink_fd, chunk, (size_t)n))
						return pv_error_set(
						    err, PV_ERR_IO,
						    "%s: %s: writing its output here: %s", s->name,
						    what, strerror(errno));
				} else if (stream == 0)
					take(&res->out, &res->dropped_out, chunk, (size_t)n);
				else
					take(&res->err, &res->dropped_err, chunk, (size_t)n);
			}
			if (n < 0 && n != LIBSSH2_ERROR_EAGAIN)
				return pv_error_set(err, PV_ERR_IO, "%s: %s: connection lost: %s",
				                    s->name, what, last_error(s));
		}
		if (progress)
			continue;
		if (libssh2_channel_eof(ch))
			return PV_OK;
		if (wait_socket(s, deadline) != PV_OK) {
			st = pv_error_set(err, PV_ERR_TIMEOUT,
			                  "%s: %s: still running after %lld ms, abandoned", s->name,
			                  what, (long long)(deadline - start));
			return st;
		}
	}
}

static PvStatus run_channel(PvSsh *s, LIBSSH2_CHANNEL *ch, const char *cmd, const char *what,
                            int sink_fd, PvSshResult *res, int64_t start, int64_t deadline,
                            PvError *err)
{
	PvStatus st;
	int rc;
	PV_SSH_RETRY(rc, libssh2_channel_exec(ch, cmd), what);
	if (rc != 0) {
		st = pv_error_set(err, PV_ERR_PROTOCOL, "%s: %s: the host refused to run it: %s",
		                  s->name, what, last_error(s));
		goto out;
	}
	st = drain(s, ch, res, what, sink_fd, start, deadline, err);
	if (st != PV_OK)
		goto out;
	PV_SSH_RETRY(rc, libssh2_channel_close(ch), what);
	PV_SSH_RETRY(rc, libssh2_channel_wait_closed(ch), what);
	if (rc != 0) {
		st = pv_error_set(err, PV_ERR_IO, "%s: %s: connection lost: %s", s->name, what,
		                  last_error(s));
		goto out;
	}
	res->exit_status = libssh2_channel_get_exit_status(ch);
	char *sig = NULL;
	size_t siglen = 0;
	libssh2_channel_get_exit_signal(ch, &sig, &siglen, NULL, NULL, NULL, NULL);
	if (sig) {
		size_t n =
		    siglen < sizeof res->exit_signal - 1 ? siglen : sizeof res->exit_signal - 1;
		memcpy(res->exit_signal, sig, n);
		res->exit_signal[n] = '\0';
		libssh2_free(s->session, sig);
		if (!res->exit_signal[0])
			pv_strlcpy(res->exit_signal, "?", sizeof res->exit_signal);
		/* a killed command has no exit status (OpenSSH may report 0 beside the signal) */
		res->exit_status = -1;
	}
out:
	return st;
}

static PvStatus run_argv(PvSsh *s, const char *const *argv, int timeout_ms, int sink_fd,
                         PvSshResult *res, PvError *err)
{
	*res = (PvSshResult){.exit_status = -1};
	int64_t start = pv_clock_mono_ms();
	int64_t deadline = start + timeout_ms;
	if (!argv || !argv[0])
		return pv_error_set(err, PV_ERR_USAGE, "%s: no command to run", s->name);
	if (timeout_ms <= 0)
		return pv_error_set(err, PV_ERR_USAGE, "%s: %s: no deadline given", s->name,
		                    argv[0]);

	PvStatus st = PV_OK;
	LIBSSH2_CHANNEL *ch = NULL;
	char *cmd = pv_ssh_command(argv);
	char what[128];
	snprintf(what, sizeof what, "%s", argv[0]);

	for (int attempt = 0;; attempt++) {
		bool fresh = false;
		if (!s->session) {
			st = do_connect(s, start, deadline, err);
			if (st != PV_OK)
				goto out;
			fresh = res->connected = true;
		}
		st = open_channel(s, start, deadline, &ch, err);
		if (st == PV_OK)
			break;
		/* A kept session that fails before the command was sent is stale (the host or the
		 * connection went away since): connect once more.  Nothing ran. */
		drop_session(s);
		if (st == PV_ERR_TIMEOUT || fresh || attempt > 0)
			goto out;
		pv_error_clear(err);
	}
	st = run_channel(s, ch, cmd, what, sink_fd, res, start, deadline, err);
	if (st == PV_OK) {
		int rc;
		PV_SSH_RETRY(rc, libssh2_channel_free(ch), what);
		ch = NULL;
	}
out:
	if (st != PV_OK && s->session) {
		/* unknown state: give the session up (drop_session frees the channel too) */
		drop_session(s);
	} else if (ch) {
		libssh2_channel_free(ch);
	}
	free(cmd);
	res->duration_ms = pv_clock_mono_ms() - start;
	return st;
}

PvStatus pv_ssh_run(PvSsh *s, const char *const *argv, int timeout_ms, PvSshResult *res,
                    PvError *err)
{
	return run_argv(s, argv, timeout_ms, -1, res, err);
}

PvStatus pv_ssh_run_to_fd(PvSsh *s, const char *const *argv, int timeout_ms, int out_fd,
                          PvSshResult *res, PvError *err)
{
	return run_argv(s, argv, timeout_ms, out_fd, res, err);
}

void pv_ssh_free(PvSsh *s)
{
	if (!s)
		return;
	if (s->session) {
		/* a polite goodbye if it goes out at once; never a wait worth mentioning */
		int64_t deadline = pv_clock_mono_ms() + PV_SSH_DISCONNECT_MS;
		while (libssh2_session_disconnect(s->session, "pgvigil: bye") ==
		           LIBSSH2_ERROR_EAGAIN &&
		       wait_socket(s, deadline) == PV_OK) {
		}
	}
	drop_session(s);
	free(s->host);
	free(s->user);
	free(s->key);
	if (s->passphrase) {
		explicit_bzero(s->passphrase, strlen(s->passphrase));
		free(s->passphrase);
	}
	free(s->known_hosts);
	free(s);
}
