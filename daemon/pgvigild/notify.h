/*
 * notify: pgvigild under systemd (Type=notify).  An extension whose timer sends WATCHDOG=1
 * every half of $WATCHDOG_USEC from the loop itself, so a loop that hangs stops the pings and
 * systemd restarts the daemon; STATUS= follows incidents.  READY=1 and STOPPING=1 are sent by
 * main.c around the loop.  Without $NOTIFY_SOCKET the extension is off.
 *
 * A loop turn that runs a failover step blocks for up to that step's deadline: the watchdog
 * must be longer than the longest one (create() warns when it is not).
 */
#ifndef PV_PGVIGILD_NOTIFY_H
#define PV_PGVIGILD_NOTIFY_H

#include "pgvigild/extension.h"

extern const PvExtension pv_notify_extension;

/* The status line main.c and the extension send: "watching CLUSTER: primary P[, incident I]". */
void pv_notify_status(const PvDaemon *d, char *out, size_t size);

#endif
