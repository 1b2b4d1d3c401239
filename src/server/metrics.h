/* /metrics (Prometheus text) and /health on an HTTP(S) listener, with the
 * pki CRLs that crl.c serves on the same port.
 *
 * libmicrohttpd answers from its own thread and never touches the server:
 * the loop thread copies the figures into a snapshot under a lock
 * (mf_metrics_publish: every housekeeping tick, and after a seal or unseal
 * so /health follows at once). Nothing secret is exported.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_METRICS_H
#define MF_SERVER_METRICS_H

#include "server/srv.h"

/* Starts the listener when s->cfg->metrics_listen is set (else does
 * nothing). Needs s->crl. @return 0; MF_ECONFIG (bad address, TLS files). */
int mf_metrics_start(struct mf_server *s);
void mf_metrics_stop(struct mf_server *s);
/* Copies the current figures for the HTTP thread. */
void mf_metrics_publish(struct mf_server *s);
/* The bound address ("" when disabled). */
const char *mf_metrics_addr(const struct mf_server *s);

#endif
