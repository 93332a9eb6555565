/* Credentials the way Tencent's SDKs find them (contract section 9): explicit keys, the profile
 * file, a CVM role from the instance metadata service, or an OIDC token traded at STS (TKE);
 * temporary ones refreshed before they expire. This module decides the source, holds the
 * current credentials and builds and reads the refresh requests; it sends nothing (the worker
 * does, through the HTTP adapter, so a refresh never blocks the event loop). Reads local files
 * (the profile, the web-identity token). Single-threaded. */
#ifndef CLW_CREDS_H
#define CLW_CREDS_H

#include <stddef.h>
#include <stdint.h>

#include "clw/answer.h"
#include "clw/api.h"
#include "clw/config.h"

enum clw_creds_source {
    CLW_CREDS_NONE = 0, /* nothing configured: only a metadata service listing a role is left */
    CLW_CREDS_STATIC,   /* api.secret_id / api.secret_key (keys, files or environment) */
    CLW_CREDS_PROFILE,  /* the profile file */
    CLW_CREDS_CVM_ROLE, /* a CAM role from the CVM metadata service (temporary) */
    CLW_CREDS_OIDC,     /* AssumeRoleWithWebIdentity at STS (TKE, temporary) */
};

/* The environment the chain reads (getenv in production; the strings are copied). */
struct clw_creds_env {
    const char *credentials_file; /* TENCENTCLOUD_CREDENTIALS_FILE */
    const char *home;             /* HOME: ~/.tencentcloud/credentials */
    const char *tke_region;       /* TKE_REGION */
    const char *tke_provider_id;  /* TKE_PROVIDER_ID */
    const char *tke_token_file;   /* TKE_WEB_IDENTITY_TOKEN_FILE */
    const char *tke_role_arn;     /* TKE_ROLE_ARN */
};

struct clw_creds;

/* Decides the source, first match wins: (1) api.secret_id and api.secret_key (both or
 * neither); (2) the profile file (TENCENTCLOUD_CREDENTIALS_FILE, else
 * ~/.tencentcloud/credentials) when it has section api.profile; (3) api.role_name: a CVM
 * role; (4) TKE_REGION, TKE_PROVIDER_ID, TKE_WEB_IDENTITY_TOKEN_FILE and TKE_ROLE_ARN: OIDC;
 * else CLW_CREDS_NONE, where only the role the metadata service lists is left (the caller asks
 * with clw_creds_discover). Errors (half of a pair, a profile without secret_id or secret_key,
 * an unreadable profile, part of the TKE variables) return NULL with a message naming the file
 * or variable, never a secret. */
struct clw_creds *clw_creds_new(const struct clw_config *cfg, const struct clw_creds_env *env,
                                char *err, size_t errlen);
void clw_creds_free(struct clw_creds *c);

enum clw_creds_source clw_creds_source(const struct clw_creds *c);
/* 1 for temporary credentials (a CVM role, OIDC). */
int clw_creds_temporary(const struct clw_creds *c);
/* A description of where the credentials come from, e.g. "CVM role worker (metadata service
 * http://...)"; never a secret. */
void clw_creds_describe(const struct clw_creds *c, char *out, size_t len);
/* A stable name of whoever the credentials belong to (the SecretId of long-term keys, the
 * role of temporary ones): temporary SecretIds change at every refresh, this does not. */
const char *clw_creds_principal(const struct clw_creds *c, const struct clw_config *cfg);

/* The credentials to sign with at wall time now_ms. Returns 0 with out filled (borrowed until
 * the next change) and *gen, a number that changes whenever they do; -1 when there are none
 * yet or they have expired. Long-term keys are read from cfg each time (SIGHUP replaces
 * them). */
int clw_creds_get(const struct clw_creds *c, const struct clw_config *cfg, int64_t now_ms,
                  struct clw_api_creds *out, unsigned *gen);
/* When the temporary credentials expire (wall ms), -1 when none or long-term. */
int64_t clw_creds_expiry_ms(const struct clw_creds *c);
/* When the next refresh should start (wall ms): at once while there are none, else at two
 * thirds of their life or five minutes before they expire, whichever is first, but not before
 * half of their life. -1 for long-term credentials. */
int64_t clw_creds_refresh_at_ms(const struct clw_creds *c);

/* Turns a CLW_CREDS_NONE chain into a CVM role to be discovered: the next request lists the
 * roles the metadata service knows. */
void clw_creds_discover(struct clw_creds *c);

/* The next refresh request (a GET to the metadata service, or the STS call with the token
 * read from its file now) at wall time now_ms. Returns 0, -1 with err (no secret). */
int clw_creds_request(struct clw_creds *c, int64_t now_ms, struct clw_api_request *req, char *err,
                      size_t errlen);
/* Takes the answer to the last request. Returns 0 when new credentials are in place, 1 when
 * another request is needed (the role was discovered), -1 with err when the refresh failed
 * (the current credentials, if any, stay). */
int clw_creds_answer(struct clw_creds *c, enum clw_transport transport, long status,
                     const char *body, size_t len, int64_t now_ms, char *err, size_t errlen);

/* SIGHUP: reads the profile file again (other sources need nothing). Returns 0, -1 with err
 * (the old credentials stay). */
int clw_creds_reload(struct clw_creds *c, char *err, size_t errlen);

#endif
