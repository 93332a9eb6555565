/* Tencent Cloud API v2 request signing: string to sign, HMAC-SHA1/SHA256, Base64 and URL
 * encoding. OpenSSL stays inside this module. Pure: the caller supplies Timestamp and Nonce. */
#ifndef CLW_SIGN_H
#define CLW_SIGN_H

#include <stddef.h>

#include "clw/config.h" /* enum clw_sign_method, enum clw_http_method */

/* One request parameter; both strings are borrowed. */
struct clw_param {
    const char *name;
    const char *value;
};

/* Builds "METHOD" + host + path + "?" + name=value pairs joined by '&', names with '_' replaced
 * by '.', sorted by name in byte order, raw (not URL-encoded) values. Returns a malloc'd string
 * the caller frees, NULL on allocation failure. */
char *clw_sign_string_to_sign(const char *http_method, const char *host, const char *path,
                              const struct clw_param *params, size_t n);

/* Base64(HMAC(key, msg)) into out (NUL-terminated). out must hold CLW_SIGN_B64_MAX bytes.
 * Returns 0 or -1. */
#define CLW_SIGN_B64_MAX 64
int clw_sign_hmac_b64(enum clw_sign_method method, const char *key, size_t key_len,
                      const char *msg, size_t msg_len, char *out);

/* Percent-encodes every byte outside [A-Za-z0-9-_.~] as %XX (upper-case hex). Returns a malloc'd
 * string, NULL on allocation failure. */
char *clw_url_encode(const char *s);

/* Signs params (which must not contain Signature) and returns the URL-encoded
 * "name=value&...&Signature=..." string, usable as a GET query or a POST form body. The
 * SignatureMethod parameter, if wanted, must be among params (the caller adds it).
 * Returns a malloc'd string, NULL on failure. */
char *clw_sign_v2_query(enum clw_sign_method method, const char *http_method, const char *host,
                        const char *path, const struct clw_param *params, size_t n,
                        const char *secret_key);

/* Overwrites secret material in place (OPENSSL_cleanse). */
void clw_sign_wipe(void *p, size_t n);

#endif
