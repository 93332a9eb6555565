/* Operations listener: /metrics, /healthz, /readyz on metrics.listen, served by its own thread
 * (libmicrohttpd) from the thread-safe metrics state. */
#ifndef CLW_HTTPD_H
#define CLW_HTTPD_H

#include <stddef.h>

#include "clw/metrics.h"

struct clw_httpd;

/* listen is "HOST:PORT", ":PORT" (all addresses) or "[::1]:PORT"; port 0 picks one. m is
 * borrowed and must outlive the listener. Returns NULL with a message in err on bind failure. */
struct clw_httpd *clw_httpd_start(const char *listen, struct clw_metrics *m, char *err,
                                  size_t errlen);
/* The bound port (useful with port 0). */
int clw_httpd_port(const struct clw_httpd *d);
void clw_httpd_stop(struct clw_httpd *d);

#endif
