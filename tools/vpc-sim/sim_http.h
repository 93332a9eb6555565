/* vpc-sim: the HTTP(S) front end on libmicrohttpd; held answers wait on the timer thread. */
#ifndef CLW_SIM_HTTP_H
#define CLW_SIM_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sim.h"
#include "sim_timer.h"

struct clw_sim_http_options {
    struct sockaddr_storage addr; /* where to listen; port 0 picks one */
    socklen_t addr_len;
    unsigned threads;          /* event-loop threads (epoll), 1 or more */
    unsigned connection_limit; /* most open connections */
    const char *tls_cert_pem;  /* both set: HTTPS; PEM text, borrowed until stop */
    const char *tls_key_pem;
};

struct clw_sim_http {
    struct MHD_Daemon *daemon;
    struct clw_sim *sim;
    struct clw_sim_timer timer;
    uint16_t port; /* the bound port */
};

/* Starts serving sim. Returns 0, or -1 with a reason in err. */
int clw_sim_http_start(struct clw_sim_http *http, struct clw_sim *sim,
                       const struct clw_sim_http_options *opts, char *err, size_t errsz);

/* Answers or closes every held connection, then stops the daemon. */
void clw_sim_http_stop(struct clw_sim_http *http);

#endif
