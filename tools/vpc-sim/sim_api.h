/* vpc-sim: what the v2 and API 3.0 front ends share: one call from parsing to the call log. */
#ifndef CLW_SIM_API_H
#define CLW_SIM_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sim.h"
#include "sim_params.h"

#define CLW_SIM_V3_VERSION "2017-03-12"
#define CLW_SIM_V3_SERVICE "vpc"

enum clw_sim_action {
    CLW_SIM_ACTION_UNKNOWN,
    CLW_SIM_ACTION_ATTACH,
    CLW_SIM_ACTION_DETACH,
    CLW_SIM_ACTION_DESCRIBE_LINKS, /* v2 DescribeVpcClassicLink, v3 DescribeClassicLinkInstances */
    CLW_SIM_ACTION_DESCRIBE_VPCS,  /* v2 only */
    CLW_SIM_ACTION_TASK_RESULT,    /* v2 only */
};

/* Whom a call claims to be: a credential of the --credentials file or a temporary one. */
struct clw_sim_principal {
    const char *secret_key;                    /* the static key or key_buf */
    const char *token;                         /* NULL: no token is checked */
    char key_buf[CLW_SIM_TMP_KEY_LEN + 1];     /* a temporary credential's, copied */
    char token_buf[CLW_SIM_TMP_TOKEN_LEN + 1]; /* its token */
    char account[CLW_SIM_ACCOUNT_MAX];         /* whose quota the call uses */
    uint32_t id;                               /* the nonce memory's identity */
    int64_t expires;                           /* 0: does not expire */
};

/* Looks secret_id up among the static credentials, then (under the lock, which the caller
 * must not hold) the temporary ones; fills *who and returns true when found. */
bool clw_sim_principal_find(struct clw_sim *sim, const char *secret_id,
                            struct clw_sim_principal *who);

/* Everything one API call carries from parsing to the call log. Errors are kept in reply as
 * v2 codes (numeric code, codeDesc) until clw_sim_v3_translate turns them into API 3.0 codes
 * for a v3 call; from then on reply.code is only zero (success) or not, and code_desc holds the
 * v3 Code. */
struct clw_sim_call {
    int version;                  /* 2 or 3 */
    struct clw_sim_params params; /* v2: decoded parameters; v3: the X-TC-* headers (logged) */
    cJSON *body;                  /* v3: the JSON body, NULL when absent or not JSON */
    const char *action_name;      /* Action / X-TC-Action, NULL if absent */
    const char *api_version;      /* v3: X-TC-Version */
    enum clw_sim_action action;
    const char *region; /* Region / X-TC-Region */
    bool authenticated;
    struct clw_sim_principal who; /* valid once the SecretId is known */
    bool throttled;               /* refused by the quota */
    const char **ids;             /* instance ids the call names, borrowed from params or body */
    size_t nids;
    const char *vpc_id;
    struct clw_sim_link_query links;
    struct clw_sim_link_filter *filters; /* v3 listing filters (owned) */
    const char **filter_values;          /* their values, borrowed from body (array owned) */
    struct clw_sim_vpc_query vpcs;
    uint64_t task_id;
    struct clw_sim_reply reply;
    struct clw_sim_fault fault;
    char request_id[40]; /* v3 RequestId */
};

/* The host a client signed: --sign-host, else the Host header without its port. */
void clw_sim_signing_host(const struct clw_sim *sim, const char *host, char *out, size_t outsz);

/* Decimal digits only (at most 20), at most max. */
bool clw_sim_parse_number(const char *s, uint64_t max, uint64_t *out);

/* ---- API 3.0, in sim_api3.c ------------------------------------------------------------- */

/* Reads the X-TC-* headers and checks them, the JSON content type, the Authorization header,
 * the SecretId, the TC3 signature and the token, without the lock held (it takes it briefly to
 * look a temporary SecretId up). Parses the body once the signature is good. Returns true with
 * call->who filled, or false with call->reply set. */
bool clw_sim_v3_authenticate(struct clw_sim *sim, const struct clw_sim_request *req,
                             struct clw_sim_call *call);

/* X-TC-Timestamp within the window of the simulator's clock (AuthFailure.SignatureExpire).
 * Caller holds the lock. */
bool clw_sim_v3_check_time(const struct clw_sim *sim, struct clw_sim_call *call);

/* The action's body fields; on failure call->reply holds the error. */
bool clw_sim_v3_parse_args(struct clw_sim_call *call, size_t max_instances);

/* Turns the v2 string codes in call->reply into API 3.0 codes (ResourceNotFound, ...). */
void clw_sim_v3_translate(struct clw_sim_call *call);

/* The API 3.0 Code a "code:N[:Desc]" fault answers with. */
const char *clw_sim_v3_fault_code(const struct clw_sim_fault *fault);

/* {"Response":{...,"RequestId"}} from call->reply (success members or Error). */
void clw_sim_v3_respond(struct clw_sim_call *call, struct clw_sim_response *resp);

/* {"Response":{"Error":{"Code","Message"},"RequestId"}}. */
void clw_sim_v3_respond_error(const char *request_id, const char *code, const char *message,
                              struct clw_sim_response *resp);

/* A RequestId spelled like a UUID, unique per (seq, salt). out: 40 bytes. */
void clw_sim_v3_request_id(uint64_t seq, uint64_t salt, char *out);

/* Frees what clw_sim_v3_* allocated in call (body, filters). */
void clw_sim_v3_call_free(struct clw_sim_call *call);

#endif
