/* The credentials stage: the chain's source, chosen at start; temporary credentials fetched and
 * refreshed through the HTTP adapter like any call, never blocking the loop; calls signed with
 * replaced credentials signed again. Every field below is written only by worker_creds.c; an
 * expiry it cannot repair is reported to the guard. */
#ifndef CLW_WORKER_CREDS_H
#define CLW_WORKER_CREDS_H

#include <stdint.h>

#include "clw/answer.h"
#include "clw/config.h"
#include "clw/creds.h"
#include "clw/http.h"
#include "worker_guard.h"

struct credstage {
    struct clw_creds *creds; /* owned */
    int in_flight;           /* a refresh request is in flight (its address is the opaque) */
    int forced;              /* the API refused the current temporary credentials: refresh now */
    int refusals;            /* forced refreshes since an answer that accepted the credentials */
    int failures;            /* refreshes failed in a row */
    int64_t retry_mono;      /* no refresh before this */
    char why[256];           /* why the last refresh failed */
    const struct clw_config *cfg; /* borrowed */
    struct clw_http *http;        /* borrowed */
    struct guard *guard;          /* borrowed */
};

/* Resolves the credential chain (asking the metadata service at once when nothing is
 * configured). Returns 0, -1 with err. */
int clw_creds_stage_setup(struct credstage *c, const struct clw_config *cfg, struct clw_http *http,
                          struct guard *guard, char *err, size_t errlen);
void clw_creds_stage_fini(struct credstage *c);

/* 1 when calls may be signed now. */
int clw_creds_stage_ready(const struct credstage *c, int64_t now_wall);
void clw_creds_stage_tick(struct credstage *c, int64_t now);
int64_t clw_creds_stage_wait_ms(const struct credstage *c, int64_t now, int64_t max_ms);
/* 1 when opaque is this stage's refresh request. */
int clw_creds_stage_owns(const struct credstage *c, const void *opaque);
void clw_creds_stage_done(struct credstage *c, const struct clw_http_response *resp);
/* An answer to a call signed with credentials of generation gen: 1 when the API refused
 * credentials that newer ones may replace (the call is to be signed again once they are
 * there), 0 otherwise. */
int clw_creds_stage_refused(struct credstage *c, unsigned gen, const struct clw_answer *ans);
/* SIGHUP: credential files are read again. */
void clw_creds_stage_reload(struct credstage *c);

#endif
