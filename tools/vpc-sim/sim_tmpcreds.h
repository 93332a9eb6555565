/* vpc-sim: temporary credentials issued by the metadata service and STS, with their expiry. */
#ifndef CLW_SIM_TMPCREDS_H
#define CLW_SIM_TMPCREDS_H

#include <stddef.h>
#include <stdint.h>

#include "sim_map.h"

#define CLW_SIM_TMP_ID_LEN    36  /* "AKID" and 32 letters or digits */
#define CLW_SIM_TMP_KEY_LEN   32  /* letters and digits */
#define CLW_SIM_TMP_TOKEN_LEN 160 /* letters, digits, '-' and '_' */
#define CLW_SIM_ACCOUNT_MAX   320 /* "cvm-role/NAME", "oidc-role/ARN" or "#INDEX" */
#define CLW_SIM_TMP_MAX       65536u

enum clw_sim_tmp_source {
    CLW_SIM_TMP_METADATA, /* the CVM metadata service (a CAM role) */
    CLW_SIM_TMP_STS,      /* STS AssumeRoleWithWebIdentity */
};

struct clw_sim_tmpcred {
    char secret_id[CLW_SIM_TMP_ID_LEN + 1];
    char secret_key[CLW_SIM_TMP_KEY_LEN + 1];
    char token[CLW_SIM_TMP_TOKEN_LEN + 1];
    char account[CLW_SIM_ACCOUNT_MAX]; /* whose quota its calls use */
    int64_t expires;                   /* simulator Unix seconds; valid while now < expires */
    uint32_t serial;                   /* unique per issue */
    enum clw_sim_tmp_source source;
};

/* Every credential issued, oldest first, until CLW_SIM_TMP_MAX are held. */
struct clw_sim_tmpcreds {
    struct clw_sim_tmpcred **items;
    size_t count;
    size_t cap;
    struct clw_sim_map index; /* secret_id -> position in items */
    uint32_t next_serial;
};

/* Issues a fresh credential (random SecretId, key and token) for account, valid from now for
 * life_s seconds. When CLW_SIM_TMP_MAX are held it first forgets those expired at now, or
 * else the oldest quarter. Returns the credential (valid until the next issue or free), or
 * NULL when memory or randomness fails. */
const struct clw_sim_tmpcred *clw_sim_tmpcreds_issue(struct clw_sim_tmpcreds *creds,
                                                     enum clw_sim_tmp_source source,
                                                     const char *account, int64_t now,
                                                     int64_t life_s);

/* The credential issued as secret_id, or NULL. */
const struct clw_sim_tmpcred *clw_sim_tmpcreds_find(const struct clw_sim_tmpcreds *creds,
                                                    const char *secret_id);

/* How many are still valid at now. */
size_t clw_sim_tmpcreds_live(const struct clw_sim_tmpcreds *creds, int64_t now);

/* Forgets (and wipes) every credential. */
void clw_sim_tmpcreds_free(struct clw_sim_tmpcreds *creds);

/* A Unix time as RFC 3339 UTC, "2026-11-25T21:06:32Z" (out: at least 21 bytes). */
void clw_sim_rfc3339(int64_t unix_s, char *out, size_t outsz);

#endif
