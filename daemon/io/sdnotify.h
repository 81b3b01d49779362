/*
 * sdnotify: systemd's service notification protocol, without libsystemd.
 *
 * A notification is one datagram of "KEY=VALUE" lines sent to the AF_UNIX socket named by
 * $NOTIFY_SOCKET: a path ("/run/systemd/notify"), or an abstract name written with a leading
 * '@'.  READY=1 when start-up is done, WATCHDOG=1 at least every WATCHDOG_USEC/2, STATUS= for
 * systemctl status, STOPPING=1 on the way out.  Without $NOTIFY_SOCKET nothing is sent and
 * nothing fails: the daemon does not depend on running under systemd.
 *
 * Not done here: deciding when to send (pgvigild's main.c and its notify extension do that).
 */
#ifndef PV_IO_SDNOTIFY_H
#define PV_IO_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

/* Sends state to the socket (NULL: $NOTIFY_SOCKET; unset or empty: nothing, PV_OK). */
PvStatus pv_sd_notify(const char *socket, const char *state, PvError *err) PV_MUSTCHECK;

/* True when $NOTIFY_SOCKET is set (the service manager waits for READY=1). */
bool pv_sd_enabled(void);

/*
 * The watchdog timeout systemd expects pings within, in ms, from $WATCHDOG_USEC (only when
 * $WATCHDOG_PID is unset or this process's pid); 0 when there is no watchdog.
 */
int64_t pv_sd_watchdog_ms(void);

#endif
