/*
 * ssh: commands on a node's host over SSH (libssh2), with verified host keys and hard deadlines.
 * The only user of libssh2 in pgvigil.
 *
 * A PvSsh is one host's session: it connects on first use and is kept for the next command;
 * a session found dead when a command starts (the server restarted, the connection dropped)
 * is replaced once, transparently, because no byte of that command had been sent yet.  A
 * command that misses its deadline drops the session (its state is unknown); the next command
 * connects afresh.
 *
 * Everything runs non-blocking (libssh2_session_set_blocking(0), poll() on the directions of
 * libssh2_session_block_directions) against one CLOCK_MONOTONIC deadline: connect(), the SSH
 * handshake, the host key check, authentication, the command and the channel close.  So
 * pv_ssh_run() returns within its timeout_ms (plus a few ms) whatever the host does: a silent
 * network, a hung sshd, a command that never ends.  Host names are resolved with
 * getaddrinfo_a() under the same deadline; numeric addresses never reach a resolver.
 * libssh2 1.10 cannot signal a remote command (libssh2_channel_signal_ex came in 1.11, and a
 * "signal" request through libssh2_channel_process_startup on an exec'd channel is refused:
 * "Channel can not be reused"), and OpenSSH does not kill a command whose client went away:
 * a command abandoned at its deadline runs on until it ends by itself.  A caller that needs it
 * bounded on the host too wraps it: {"timeout", "-k", "2", "30", "pg_ctl", ...}.
 *
 * Host keys are checked strictly against a known_hosts file (OpenSSH format, hashed entries
 * allowed, "[host]:port" entries for ports other than 22): only an exact match continues;
 * an unknown host or a changed key is refused with an error naming host:port, the key type
 * and its SHA256 fingerprint as ssh-keygen -l prints it.  Nothing is ever added to the file.
 * Authentication is by public key: a private key file (OpenSSH or PEM, optional passphrase;
 * ed25519 or ECDSA: libssh2 1.10 signs RSA only with SHA-1, which OpenSSH >= 8.8 refuses) or,
 * without a key file, the identities of the ssh-agent at $SSH_AUTH_SOCK.
 *
 * Commands are argv arrays, never command strings: every argument is single-quoted by
 * pv_ssh_command() (' becomes '\''), so no value (a path, a node name, a reason) can inject
 * shell on the host.  The account's login shell on the host must be a POSIX shell (sh, bash,
 * dash), which is what runs the quoted line.  A command's stdout and stderr are captured
 * separately (both drained as they come, so neither can stall the channel window), up to
 * PV_SSH_OUTPUT_CAP bytes each, the rest counted and dropped.  The result holds the exit
 * status and the exit signal: a command killed by a signal can report exit status 0 (seen
 * with OpenSSH), so pv_ssh_result_ok() requires status 0 and no signal.
 *
 * Error messages start with "HOST:PORT: " and never contain the passphrase.
 * libssh2_init() runs once per process, on the first pv_ssh_new().
 */
#ifndef PV_IO_SSH_H
#define PV_IO_SSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"

#define PV_SSH_OUTPUT_CAP (256 * 1024)
/* "SHA256:" + 43 base64 characters + NUL, with room to spare. */
#define PV_SSH_FINGERPRINT_LEN 64

typedef struct {
	const char *host; /* name or address, as written in known_hosts */
	int port;         /* <= 0: 22 */
	const char *user;
	const char *key;         /* private key file; NULL or "": use the ssh-agent */
	const char *passphrase;  /* of the key file; NULL or "": none */
	const char *known_hosts; /* required */
	int connect_timeout_ms;  /* cap on connect + handshake + auth; <= 0: only the run's */
} PvSshTarget;

typedef struct {
	int exit_status;      /* as the host reported it; -1 when killed by a signal */
	char exit_signal[32]; /* "TERM", "KILL"...: the command was killed; "" otherwise */
	PvBuf out;            /* stdout, at most PV_SSH_OUTPUT_CAP bytes */
	PvBuf err;            /* stderr, the same */
	size_t dropped_out;   /* bytes beyond the cap, read and dropped */
	size_t dropped_err;
	int64_t duration_ms; /* from pv_ssh_run() to its return, connecting included */
	bool connected;      /* this run had to connect (first use, or a dead session) */
} PvSshResult;

typedef struct PvSsh PvSsh;

/* Copies the target's strings; connects only when a command needs it. */
PvSsh *pv_ssh_new(const PvSshTarget *target);
/* Disconnects (politely if the session is healthy, at most ~100 ms) and frees.  NULL ok. */
void pv_ssh_free(PvSsh *s);
/* Drops the session now; the next command connects again. */
void pv_ssh_close(PvSsh *s);
bool pv_ssh_connected(const PvSsh *s);
/* "HOST:PORT" ("[::1]:22" for an IPv6 address), as errors name the host. */
const char *pv_ssh_name(const PvSsh *s);
/* The host key's "TYPE SHA256:..." of the last handshake (verified or not), or "". */
const char *pv_ssh_hostkey(const PvSsh *s);

/*
 * Runs argv (argv[0] the program, NULL-terminated, at least one element) on the host, blocking
 * the caller at most timeout_ms (the connect timeout of the target also caps connecting).
 * PV_OK: the command ran and ended; *res says how (pv_ssh_result_ok for "exit 0, no signal").
 * Errors, each with *res as far as it got (output already received is kept):
 *   PV_ERR_TIMEOUT  the deadline passed (connecting or running); the session is dropped
 *   PV_ERR_REFUSED  host key unknown or changed, or authentication refused
 *   PV_ERR_IO       name resolution, connect, the connection lost, known_hosts unreadable
 *   PV_ERR_PROTOCOL an SSH-level failure (handshake, channel refused)
 *   PV_ERR_USAGE    an empty argv
 * *res is overwritten (free an earlier result first); free it with pv_ssh_result_free()
 * whatever the status.
 */
PvStatus pv_ssh_run(PvSsh *s, const char *const *argv, int timeout_ms, PvSshResult *res,
                    PvError *err) PV_MUSTCHECK;
/*
 * pv_ssh_run, with the command's stdout written to out_fd as it arrives (blocking writes; no
 * cap), for a stream such as tar's.  A failed write ends the run with PV_ERR_IO (the caller
 * ignores SIGPIPE when out_fd is a pipe).  res->out stays empty.
 */
PvStatus pv_ssh_run_to_fd(PvSsh *s, const char *const *argv, int timeout_ms, int out_fd,
                          PvSshResult *res, PvError *err) PV_MUSTCHECK;
/* Connects now (connect, host key, auth) if not connected, under timeout_ms. */
PvStatus pv_ssh_connect(PvSsh *s, int timeout_ms, PvError *err) PV_MUSTCHECK;

void pv_ssh_result_free(PvSshResult *res);
/* Exit status 0 and no signal. */
bool pv_ssh_result_ok(const PvSshResult *res);
/* "exit 0", "exit 3", "killed by signal TERM", "no exit status" */
void pv_ssh_result_describe(const PvSshResult *res, char *out, size_t size);

/* ---- pure helpers (unit-tested) ---- */

/* Appends arg single-quoted for a POSIX shell: abc -> 'abc', it's -> 'it'\''s', "" -> ''. */
void pv_ssh_quote(PvBuf *b, const char *arg);
/* The command line sent to the host: every argument quoted, separated by one space. */
char *pv_ssh_command(const char *const *argv);
/* "SHA256:" + unpadded base64 of a 32-byte hash, as OpenSSH prints fingerprints. */
void pv_ssh_fingerprint(const unsigned char hash[32], char *out, size_t size);
/* "ssh-ed25519", "ecdsa-sha2-nistp256", ... for a LIBSSH2_HOSTKEY_TYPE_*; "unknown" otherwise. */
const char *pv_ssh_hostkey_type_name(int type);
/* "host:port", or "[host]:port" when host contains ':' (IPv6). */
void pv_ssh_format_hostport(const char *host, int port, char *out, size_t size);

#endif
