/* vpc-sim: the simulator's own, independent v2 signature check (HmacSHA1 / HmacSHA256). */
#ifndef CLW_SIM_SIGN_H
#define CLW_SIM_SIGN_H

#include <stdbool.h>
#include <stddef.h>

#include "sim_params.h"

enum clw_sim_hmac {
    CLW_SIM_HMAC_SHA1,
    CLW_SIM_HMAC_SHA256,
};

/* Base64 of a SHA-256 HMAC is 44 characters; room for the terminator and some slack. */
#define CLW_SIM_SIG_MAX 64

/* "HmacSHA256" selects SHA-256; anything else, NULL included, selects SHA-1. */
enum clw_sim_hmac clw_sim_sign_hmac_for(const char *signature_method);

/* The v2 string to sign: METHOD + host + path + '?' + the parameters other than Signature,
 * sorted by (normalised) name in byte order, joined as name=value with '&', raw values.
 * Returns a malloc'd string, NULL on allocation failure. */
char *clw_sim_sign_string(const char *method, const char *host, const char *path,
                          const struct clw_sim_params *params);

/* Base64(HMAC(key, msg)) into out (CLW_SIM_SIG_MAX bytes). Returns 0, or -1 on failure. */
int clw_sim_sign_hmac(enum clw_sim_hmac hmac, const char *key, const char *msg, char *out);

/* True when params carries a Signature equal (in constant time) to the one computed with key
 * over the string to sign for method, host and path. */
bool clw_sim_sign_verify(const char *method, const char *host, const char *path,
                         const struct clw_sim_params *params, const char *key);

/* Overwrites secret material in place. */
void clw_sim_sign_wipe(void *p, size_t n);

#endif
