/* vpc-sim: the simulator as one object: what a request sees, and how it is answered. */
#ifndef CLW_SIM_H
#define CLW_SIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sim_creds.h"
#include "sim_faults.h"
#include "sim_log.h"
#include "sim_nonce.h"
#include "sim_quota.h"
#include "sim_state.h"
#include "sim_stats.h"
#include "sim_svcmode.h"
#include "sim_tmpcreds.h"

#define CLW_SIM_API_PATH      "/v2/index.php"
#define CLW_SIM_V3_PATH       "/" /* API 3.0: POST with a JSON body and X-TC-* headers */
#define CLW_SIM_ADMIN_PATH    "/_sim/"
#define CLW_SIM_METADATA_PATH "/latest/meta-data/cam/security-credentials/"
#define CLW_SIM_STS_ACTION    "AssumeRoleWithWebIdentity"
#define CLW_SIM_STS_VERSION   "2018-08-13"

#define CLW_SIM_ROLE_MAX       129  /* a CAM role name: 1..128 of [A-Za-z0-9+=,.@_-] */
#define CLW_SIM_OIDC_MAX       257  /* a provider id or role ARN: 1..256 printable characters */
#define CLW_SIM_PATH_MAX       1024 /* the OIDC token file */
#define CLW_SIM_CODE_MAX       64   /* an API 3.0 error Code */
#define CLW_SIM_LIFE_MAX_S     86400
#define CLW_SIM_DEFAULT_LIFE_S 7200

/* How a call with an expired temporary credential is refused. */
enum clw_sim_expired_code {
    CLW_SIM_EXPIRED_TOKEN_FAILURE,     /* 4105 / AuthFailure.TokenFailure */
    CLW_SIM_EXPIRED_SECRET_ID_UNKNOWN, /* 4104 / AuthFailure.SecretIdNotFound */
};

/* Settings that POST /_sim/config may change at run time. */
struct clw_sim_settings {
    struct clw_sim_rules rules;
    int64_t window_s;       /* replay window: Timestamp skew allowed, Nonce memory */
    int64_t clock_skew_s;   /* added to the simulator's clock */
    size_t max_instances;   /* most instanceIds.N (InstanceIds) in one call */
    uint32_t quota;         /* calls per second per (account, action); 0: no quota */
    uint32_t quota_reserve; /* calls per second of each quota a phantom client spends */
    bool quota_per_region;  /* the quota is per (account, region, action) instead */
    /* Temporary credentials: the metadata service's role, STS's OIDC provider, their life. */
    char cvm_role[CLW_SIM_ROLE_MAX]; /* "": no role bound (the metadata service answers 404) */
    int64_t temp_life_s;             /* life of an issued temporary credential */
    enum clw_sim_expired_code expired_code;
    struct clw_sim_svcmode metadata;        /* the metadata service: up, gone or malformed */
    struct clw_sim_svcmode sts;             /* STS: up, gone or malformed */
    char oidc_token_file[CLW_SIM_PATH_MAX]; /* WebIdentityToken must equal its content */
    char oidc_provider_id[CLW_SIM_OIDC_MAX];
    char oidc_role_arn[CLW_SIM_OIDC_MAX];
    char sts_provider_error[CLW_SIM_CODE_MAX]; /* Code for another ProviderId */
    char sts_role_error[CLW_SIM_CODE_MAX];     /* Code for another RoleArn */
};

struct clw_sim_options {
    const char *credentials_path; /* required */
    const char *call_log_path;    /* NULL: no call log */
    const char *sign_host;        /* NULL: the Host header without its port */
    bool admin;                   /* serve /_sim/ */
    cJSON *seed;                  /* taken by clw_sim_init */
    cJSON *faults;                /* taken; NULL: none; applied at start and on reset */
    uint64_t rng_seed;
    struct clw_sim_settings settings;
};

/* One lock guards everything mutable; HMAC checks run outside it. */
struct clw_sim {
    pthread_mutex_t lock;
    const char *sign_host;
    bool admin;
    struct clw_sim_creds creds; /* read-only once started */
    struct clw_sim_log log;
    struct clw_sim_settings settings;
    struct clw_sim_settings initial_settings;
    struct clw_sim_nonces nonces;
    cJSON *seed;
    struct clw_sim_state state;
    struct clw_sim_faults faults;
    cJSON *initial_faults;
    uint64_t rng_seed;
    struct clw_sim_stats stats;
    struct clw_sim_quota quota;
    struct clw_sim_tmpcreds tmpcreds; /* issued by the metadata service and STS */
    uint64_t request_seq;             /* API 3.0 RequestIds */
};

struct clw_sim_request {
    const char *method;       /* "GET", "POST", ... */
    const char *host;         /* Host header (may carry a port), NULL if absent */
    const char *target;       /* raw request target: path and optional "?query" */
    const char *content_type; /* NULL if absent */
    const char *body;
    size_t body_len;
    /* Any other request header by name (case-insensitive), NULL when absent; header may be
     * NULL (no other headers). */
    const char *(*header)(void *ctx, const char *name);
    void *header_ctx;
};

enum clw_sim_disposition {
    CLW_SIM_ANSWER, /* send status/body */
    CLW_SIM_CLOSE,  /* close the connection without an answer */
};

struct clw_sim_response {
    enum clw_sim_disposition disposition;
    int status;
    char *body; /* malloc'd, owned by the response */
    size_t body_len;
    const char *content_type; /* static */
    int retry_after_s;        /* Retry-After header when > 0 */
    uint32_t delay_ms;        /* wait this long before answering or closing */
};

/* Builds the simulator; takes opts->seed and opts->faults in every case. Returns 0, or -1 with
 * a reason in err. */
int clw_sim_init(struct clw_sim *sim, struct clw_sim_options *opts, char *err, size_t errsz);
void clw_sim_free(struct clw_sim *sim);

/* Answers one HTTP request: the v2 API at CLW_SIM_API_PATH, API 3.0 at CLW_SIM_V3_PATH (POST),
 * the admin endpoints under CLW_SIM_ADMIN_PATH, 404 elsewhere. Thread-safe. resp is
 * overwritten. */
void clw_sim_handle(struct clw_sim *sim, const struct clw_sim_request *req,
                    struct clw_sim_response *resp);

void clw_sim_response_free(struct clw_sim_response *resp);

/* Sets resp to status with a JSON body printed from doc (doc is deleted). */
void clw_sim_respond_json(struct clw_sim_response *resp, int status, cJSON *doc);

/* Sets resp to a plain answer (text is copied). */
void clw_sim_respond_text(struct clw_sim_response *resp, int status, const char *content_type,
                          const char *text);

/* For a service in mode drop or http:N: sets resp to a closed connection or that status with a
 * small HTML body, writes the stats key ("drop", "http:N") into result and returns true; false
 * in the other modes. */
bool clw_sim_respond_gone(const struct clw_sim_svcmode *mode, struct clw_sim_response *resp,
                          char *result, size_t resultsz);

/* Implemented in sim_admin.c: the /_sim/ endpoints. path starts with CLW_SIM_ADMIN_PATH. */
void clw_sim_admin_handle(struct clw_sim *sim, const struct clw_sim_request *req, const char *path,
                          struct clw_sim_response *resp);

/* "AuthFailure.TokenFailure" or "AuthFailure.SecretIdNotFound" into *out; 0, or -1. */
int clw_sim_expired_code_parse(const char *text, enum clw_sim_expired_code *out);

/* Implemented in sim_metadata.c: GET CLW_SIM_METADATA_PATH[ROLE], the CVM metadata service's
 * CAM role credentials. path starts with CLW_SIM_METADATA_PATH. */
void clw_sim_metadata_handle(struct clw_sim *sim, const struct clw_sim_request *req,
                             const char *path, struct clw_sim_response *resp);

/* A CAM role name: 1..128 of letters, digits and +=,.@_- */
bool clw_sim_role_name_ok(const char *name);

/* Implemented in sim_sts.c: POST / with X-TC-Action CLW_SIM_STS_ACTION. */
void clw_sim_sts_handle(struct clw_sim *sim, const struct clw_sim_request *req,
                        struct clw_sim_response *resp);

/* An OIDC provider id or role ARN: 1..256 printable ASCII characters. */
bool clw_sim_oidc_value_ok(const char *value);

/* An API 3.0 error Code: 1..63 of letters, digits and '.', starting with a letter. */
bool clw_sim_error_code_ok(const char *code);

/* Wall clock in milliseconds. */
int64_t clw_sim_now_ms(void);

/* The simulator's clock in Unix seconds: the wall clock plus the configured skew. Caller holds
 * the lock. */
int64_t clw_sim_now_s(const struct clw_sim *sim);

#endif
