/* Tencent Cloud API v2 request signing: string to sign, HMAC-SHA1/SHA256, Base64 and URL
 * encoding. OpenSSL stays inside this module. Pure: the caller supplies Timestamp and Nonce. */
#ifndef CLW_SIGN_H
#define CLW_SIGN_H

#include <stddef.h>
#include <stdint.h>

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
int clw_sign_hmac_b64(enum clw_sign_method method, const char *key, size_t key_len, const char *msg,
                      size_t msg_len, char *out);

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

/* API 3.0 request signing (TC3-HMAC-SHA256). All strings borrowed. */
struct clw_tc3_input {
    const char *secret_id;
    const char *secret_key;
    const char *service;      /* e.g. "vpc" */
    const char *host;         /* e.g. "vpc.tencentcloudapi.com" (no port) */
    const char *method;       /* "POST" */
    const char *path;         /* canonical URI, "/" */
    const char *query;        /* canonical query string, "" for POST */
    const char *content_type; /* "application/json; charset=utf-8" */
    const char *payload;
    size_t payload_len;
    int64_t timestamp; /* seconds; the credential date is its UTC date */
};

/* Returns the malloc'd Authorization header value
 * "TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=content-type;host,
 * Signature=HEX", or NULL on failure. When not NULL, hashed_payload and hashed_canonical
 * (65 bytes each) receive the lowercase hex SHA-256 of the payload and of the canonical
 * request (for known-answer tests). */
char *clw_sign_tc3_authorization(const struct clw_tc3_input *in, char *hashed_payload,
                                 char *hashed_canonical);

/* Overwrites secret material in place (OPENSSL_cleanse). */
void clw_sign_wipe(void *p, size_t n);

#endif
