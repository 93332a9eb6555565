/* Tencent Cloud API request signing: v2 (string to sign, HMAC, Base64, URL encoding) and API 3.0
 * (TC3-HMAC-SHA256). */
#include "clw/sign.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* Parameter names are compared as if every '_' were a '.' (the server, written in PHP, sees
 * "instanceIds.0" as "instanceIds_0" and maps it back before verifying). */
static unsigned char sign_name_byte(char c)
{
    return c == '_' ? (unsigned char)'.' : (unsigned char)c;
}

/* Byte-order comparison of two transformed names; ties keep the caller's order so the result
 * is deterministic even with duplicate names. */
static int sign_param_cmp(const void *pa, const void *pb)
{
    const struct clw_param *a = *(const struct clw_param *const *)pa;
    const struct clw_param *b = *(const struct clw_param *const *)pb;
    const char *x = a->name;
    const char *y = b->name;
    int ret = 0;

    while (*x != '\0' && sign_name_byte(*x) == sign_name_byte(*y)) {
        x++;
        y++;
    }
    ret = (int)sign_name_byte(*x) - (int)sign_name_byte(*y);
    if (ret == 0 && a != b)
        ret = a < b ? -1 : 1;
    return ret;
}

/* Returns a malloc'd array of pointers to params sorted by transformed name, NULL on
 * allocation failure or invalid parameters. n == 0 gives a 1-element dummy array. */
static const struct clw_param **sign_sorted(const struct clw_param *params, size_t n)
{
    const struct clw_param **sorted = NULL;
    size_t i;

    if (n > 0 && params == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        if (params[i].name == NULL || params[i].value == NULL)
            return NULL;
    }
    if (n > SIZE_MAX / sizeof(*sorted))
        return NULL;
    sorted = malloc((n > 0 ? n : 1) * sizeof(*sorted));
    if (sorted == NULL)
        return NULL;
    for (i = 0; i < n; i++)
        sorted[i] = &params[i];
    if (n > 1)
        qsort(sorted, n, sizeof(*sorted), sign_param_cmp);
    return sorted;
}

/* Adds b to *total, failing on overflow. */
static int sign_add_len(size_t *total, size_t b)
{
    if (b > SIZE_MAX - *total)
        return -1;
    *total += b;
    return 0;
}

/* Copies s to p, returns the position after it. */
static char *sign_put(char *p, const char *s, size_t len)
{
    memcpy(p, s, len);
    return p + len;
}

/* Builds the string to sign from an already sorted parameter list. */
static char *sign_build_sts(const char *http_method, const char *host, const char *path,
                            const struct clw_param *const *sorted, size_t n)
{
    char *out = NULL;
    char *p;
    size_t total = 0;
    size_t i;
    size_t j;
    int bad = 0;

    bad |= sign_add_len(&total, strlen(http_method));
    bad |= sign_add_len(&total, strlen(host));
    bad |= sign_add_len(&total, strlen(path));
    bad |= sign_add_len(&total, 2); /* '?' and the NUL */
    for (i = 0; i < n; i++) {
        bad |= sign_add_len(&total, strlen(sorted[i]->name));
        bad |= sign_add_len(&total, strlen(sorted[i]->value));
        bad |= sign_add_len(&total, 2); /* '=' and '&' (one too many, harmless) */
    }
    if (bad)
        return NULL;
    out = malloc(total);
    if (out == NULL)
        return NULL;
    p = sign_put(out, http_method, strlen(http_method));
    p = sign_put(p, host, strlen(host));
    p = sign_put(p, path, strlen(path));
    *p++ = '?';
    for (i = 0; i < n; i++) {
        const char *name = sorted[i]->name;
        size_t len = strlen(name);

        if (i > 0)
            *p++ = '&';
        for (j = 0; j < len; j++)
            *p++ = (char)sign_name_byte(name[j]);
        *p++ = '=';
        p = sign_put(p, sorted[i]->value, strlen(sorted[i]->value));
    }
    *p = '\0';
    return out;
}

char *clw_sign_string_to_sign(const char *http_method, const char *host, const char *path,
                              const struct clw_param *params, size_t n)
{
    const struct clw_param **sorted = NULL;
    char *out = NULL;

    if (http_method == NULL || host == NULL || path == NULL)
        goto done;
    sorted = sign_sorted(params, n);
    if (sorted == NULL)
        goto done;
    out = sign_build_sts(http_method, host, path, sorted, n);
done:
    free(sorted);
    return out;
}

/* The digest of a v2 method, fetched once and kept: HMAC() fetches the HMAC and digest
 * implementations by name on every call, which cost more than the hashing itself. NULL when
 * unknown or unavailable. */
static EVP_MD *v2_digest(enum clw_sign_method method)
{
    static EVP_MD *sha256;
    static EVP_MD *sha1;
    switch (method) {
    case CLW_SIGN_HMAC_SHA256:
        if (sha256 == NULL)
            sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        return sha256;
    case CLW_SIGN_HMAC_SHA1:
        if (sha1 == NULL)
            sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
        return sha1;
    }
    return NULL;
}

/* Largest input block of the v2 digests (SHA-1 and SHA-256: 64 bytes). */
#define V2_BLOCK_MAX 64

/* HMAC (RFC 2104) of msg under key with md: H((K ^ opad) || H((K ^ ipad) || msg)), K being
 * the key (hashed first when longer than a block) padded with zeros to a block. Returns 0 with
 * the digest in md_out (*md_len bytes), or -1. */
static int v2_hmac(EVP_MD *md, const char *key, size_t key_len, const char *msg, size_t msg_len,
                   unsigned char *md_out, unsigned int *md_len)
{
    unsigned char k[V2_BLOCK_MAX];
    unsigned char pad[V2_BLOCK_MAX];
    unsigned char inner[EVP_MAX_MD_SIZE];
    unsigned int inner_len = 0;
    unsigned int klen = 0;
    int block = EVP_MD_get_block_size(md);
    int ret = -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx == NULL || block <= 0 || block > V2_BLOCK_MAX || EVP_MD_get_size(md) > block)
        goto done;
    memset(k, 0, sizeof(k));
    if (key_len > (size_t)block) {
        if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, key, key_len) != 1 ||
            EVP_DigestFinal_ex(ctx, k, &klen) != 1)
            goto done;
    } else if (key_len > 0) {
        memcpy(k, key, key_len);
    }
    for (int i = 0; i < block; i++)
        pad[i] = k[i] ^ 0x36;
    if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, pad, (size_t)block) != 1 ||
        EVP_DigestUpdate(ctx, msg, msg_len) != 1 || EVP_DigestFinal_ex(ctx, inner, &inner_len) != 1)
        goto done;
    for (int i = 0; i < block; i++)
        pad[i] = k[i] ^ 0x5c;
    if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, pad, (size_t)block) != 1 ||
        EVP_DigestUpdate(ctx, inner, inner_len) != 1 ||
        EVP_DigestFinal_ex(ctx, md_out, md_len) != 1)
        goto done;
    ret = 0;
done:
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(inner, sizeof(inner));
    EVP_MD_CTX_free(ctx);
    return ret;
}

int clw_sign_hmac_b64(enum clw_sign_method method, const char *key, size_t key_len, const char *msg,
                      size_t msg_len, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD *evp = NULL;
    int ret = -1;

    if (out == NULL)
        return -1;
    out[0] = '\0';
    evp = v2_digest(method);
    if (evp == NULL || key_len > INT_MAX || (key == NULL && key_len > 0) ||
        (msg == NULL && msg_len > 0))
        goto done;
    if (key == NULL)
        key = "";
    if (msg == NULL)
        msg = "";
    if (v2_hmac(evp, key, key_len, msg, msg_len, md, &md_len) != 0)
        goto done;
    /* Base64 of a 32-byte digest is 44 characters plus the NUL. */
    if ((md_len + 2) / 3 * 4 + 1 > CLW_SIGN_B64_MAX)
        goto done;
    EVP_EncodeBlock((unsigned char *)out, md, (int)md_len);
    ret = 0;
done:
    OPENSSL_cleanse(md, sizeof(md));
    return ret;
}

/* RFC 3986 unreserved characters. */
static int sign_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* Length of s once percent-encoded, excluding the NUL; SIZE_MAX when that would overflow. */
static size_t sign_encoded_len(const char *s)
{
    size_t len = 0;

    for (; *s != '\0'; s++) {
        if (len > SIZE_MAX - 4)
            return SIZE_MAX;
        len += sign_unreserved((unsigned char)*s) ? 1 : 3;
    }
    return len;
}

/* Writes s percent-encoded at p, returns the position after it (no NUL). */
static char *sign_encode_into(char *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (sign_unreserved(c)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0x0f];
        }
    }
    return p;
}

char *clw_url_encode(const char *s)
{
    char *out = NULL;
    size_t len;

    if (s == NULL)
        return NULL;
    len = sign_encoded_len(s);
    if (len == SIZE_MAX)
        return NULL;
    out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    *sign_encode_into(out, s) = '\0';
    return out;
}

/* Builds "name=value&...&Signature=sig", everything percent-encoded, in sorted order. */
static char *sign_build_query(const struct clw_param *const *sorted, size_t n, const char *sig)
{
    static const char sig_name[] = "Signature=";
    char *out = NULL;
    char *p;
    size_t total = 0;
    size_t i;
    int bad = 0;

    for (i = 0; i < n; i++) {
        bad |= sign_add_len(&total, sign_encoded_len(sorted[i]->name));
        bad |= sign_add_len(&total, sign_encoded_len(sorted[i]->value));
        bad |= sign_add_len(&total, 2); /* '=' and '&' */
    }
    bad |= sign_add_len(&total, sizeof(sig_name) - 1);
    bad |= sign_add_len(&total, sign_encoded_len(sig));
    bad |= sign_add_len(&total, 1);
    if (bad)
        return NULL;
    out = malloc(total);
    if (out == NULL)
        return NULL;
    p = out;
    for (i = 0; i < n; i++) {
        p = sign_encode_into(p, sorted[i]->name);
        *p++ = '=';
        p = sign_encode_into(p, sorted[i]->value);
        *p++ = '&';
    }
    p = sign_put(p, sig_name, sizeof(sig_name) - 1);
    p = sign_encode_into(p, sig);
    *p = '\0';
    return out;
}

char *clw_sign_v2_query(enum clw_sign_method method, const char *http_method, const char *host,
                        const char *path, const struct clw_param *params, size_t n,
                        const char *secret_key)
{
    const struct clw_param **sorted = NULL;
    char *sts = NULL;
    char *out = NULL;
    char sig[CLW_SIGN_B64_MAX];

    sig[0] = '\0';
    if (http_method == NULL || host == NULL || path == NULL || secret_key == NULL)
        goto done;
    sorted = sign_sorted(params, n);
    if (sorted == NULL)
        goto done;
    sts = sign_build_sts(http_method, host, path, sorted, n);
    if (sts == NULL)
        goto done;
    if (clw_sign_hmac_b64(method, secret_key, strlen(secret_key), sts, strlen(sts), sig) != 0)
        goto done;
    out = sign_build_query(sorted, n, sig);
done:
    OPENSSL_cleanse(sig, sizeof(sig));
    free(sts);
    free(sorted);
    return out;
}

/* ---- API 3.0: TC3-HMAC-SHA256 ---- */

#define TC3_ALGORITHM "TC3-HMAC-SHA256"
#define TC3_SIGNED    "content-type;host"
/* The fixed pieces of the canonical request, string to sign and header value. */
static const char tc3_signed_line[] = "\n\n" TC3_SIGNED "\n";
static const char tc3_sts_head[] = TC3_ALGORITHM "\n";
static const char tc3_auth_head[] = TC3_ALGORITHM " Credential=";
static const char tc3_auth_mid[] = ", SignedHeaders=" TC3_SIGNED ", Signature=";
#define TC3_SHA256_LEN 32
#define TC3_HEX_LEN    (2 * TC3_SHA256_LEN + 1)
/* The last second of 9999-12-31: the credential date has four year digits. */
#define TC3_MAX_TIMESTAMP INT64_C(253402300799)

static void tc3_hex(const unsigned char *md, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

/* Lower-case hex SHA-256 of [data, data+len) into out (TC3_HEX_LEN bytes). */
static int tc3_sha256_hex(const void *data, size_t len, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != TC3_SHA256_LEN)
        return -1;
    tc3_hex(md, md_len, out);
    return 0;
}

/* HMAC-SHA256(key, msg) into out (TC3_SHA256_LEN bytes). */
static int tc3_hmac(const void *key, size_t key_len, const char *msg, size_t msg_len,
                    unsigned char *out)
{
    unsigned int md_len = 0;

    if (key_len > INT_MAX)
        return -1;
    if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, msg_len, out, &md_len) ==
            NULL ||
        md_len != TC3_SHA256_LEN)
        return -1;
    return 0;
}

/* The UTC date "YYYY-MM-DD" of a Unix timestamp in seconds (0..TC3_MAX_TIMESTAMP). */
static void tc3_date(int64_t ts, char out[11])
{
    int64_t z = ts / 86400 + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int day = (int)(doy - (153 * mp + 2) / 5 + 1);
    int month = (int)(mp < 10 ? mp + 3 : mp - 9);
    int year = (int)(yoe + era * 400 + (month <= 2));

    out[0] = (char)('0' + year / 1000);
    out[1] = (char)('0' + year / 100 % 10);
    out[2] = (char)('0' + year / 10 % 10);
    out[3] = (char)('0' + year % 10);
    out[4] = '-';
    out[5] = (char)('0' + month / 10);
    out[6] = (char)('0' + month % 10);
    out[7] = '-';
    out[8] = (char)('0' + day / 10);
    out[9] = (char)('0' + day % 10);
    out[10] = '\0';
}

/* Concatenates n strings into one malloc'd string; NULL on overflow or allocation failure. */
static char *tc3_join(const char *const *parts, size_t n)
{
    char *out = NULL;
    char *p;
    size_t total = 1;
    size_t i;

    for (i = 0; i < n; i++) {
        if (sign_add_len(&total, strlen(parts[i])) != 0)
            return NULL;
    }
    out = malloc(total);
    if (out == NULL)
        return NULL;
    p = out;
    for (i = 0; i < n; i++)
        p = sign_put(p, parts[i], strlen(parts[i]));
    *p = '\0';
    return out;
}

/* A copy of a header value as the canonical headers want it: ASCII lower case, without leading
 * and trailing spaces and tabs. NULL on allocation failure. */
static char *tc3_header_value(const char *v)
{
    size_t len;
    size_t i;
    char *out;

    while (*v == ' ' || *v == '\t')
        v++;
    len = strlen(v);
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    for (i = 0; i < len; i++)
        if (v[i] >= 'A' && v[i] <= 'Z')
            out[i] = (char)(v[i] - 'A' + 'a');
        else
            out[i] = v[i];
    out[len] = '\0';
    return out;
}

/* A string that can stand in one line of the canonical request or credential scope: no line
 * breaks (they would let a value forge other lines). */
static int tc3_line_ok(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") == NULL;
}

static int tc3_input_ok(const struct clw_tc3_input *in)
{
    return in != NULL && tc3_line_ok(in->secret_id) && in->secret_key != NULL &&
           tc3_line_ok(in->service) && tc3_line_ok(in->host) && tc3_line_ok(in->method) &&
           tc3_line_ok(in->path) && (in->query == NULL || tc3_line_ok(in->query)) &&
           tc3_line_ok(in->content_type) && (in->payload != NULL || in->payload_len == 0) &&
           in->service[0] != '\0' && strchr(in->service, '/') == NULL &&
           strchr(in->secret_id, '/') == NULL && in->timestamp >= 0 &&
           in->timestamp <= TC3_MAX_TIMESTAMP;
}

/* secretSigning = HMAC(HMAC(HMAC("TC3" + key, date), service), "tc3_request"). */
static int tc3_signing_key(const char *secret_key, const char *date, const char *service,
                           unsigned char *out)
{
    unsigned char k_date[TC3_SHA256_LEN];
    unsigned char k_service[TC3_SHA256_LEN];
    char *k_secret = NULL;
    size_t key_len = strlen(secret_key);
    int ret = -1;

    if (key_len > SIZE_MAX - 4)
        goto done;
    k_secret = malloc(key_len + 4);
    if (k_secret == NULL)
        goto done;
    memcpy(k_secret, "TC3", 3);
    memcpy(k_secret + 3, secret_key, key_len + 1);
    if (tc3_hmac(k_secret, key_len + 3, date, strlen(date), k_date) != 0 ||
        tc3_hmac(k_date, sizeof(k_date), service, strlen(service), k_service) != 0 ||
        tc3_hmac(k_service, sizeof(k_service), "tc3_request", strlen("tc3_request"), out) != 0)
        goto done;
    ret = 0;
done:
    if (k_secret != NULL) {
        OPENSSL_cleanse(k_secret, key_len + 4);
        free(k_secret);
    }
    OPENSSL_cleanse(k_date, sizeof(k_date));
    OPENSSL_cleanse(k_service, sizeof(k_service));
    return ret;
}

#define TC3_JOIN(...)                                                                              \
    tc3_join((const char *const[]){__VA_ARGS__},                                                   \
             sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

char *clw_sign_tc3_authorization(const struct clw_tc3_input *in, char *hashed_payload,
                                 char *hashed_canonical)
{
    unsigned char k_signing[TC3_SHA256_LEN];
    unsigned char sig_md[TC3_SHA256_LEN];
    char payload_hex[TC3_HEX_LEN];
    char canonical_hex[TC3_HEX_LEN];
    char sig_hex[TC3_HEX_LEN];
    char timestamp[24];
    char date[11];
    char *content_type = NULL;
    char *host = NULL;
    char *canonical = NULL;
    char *scope = NULL;
    char *sts = NULL;
    char *out = NULL;

    memset(k_signing, 0, sizeof(k_signing));
    memset(sig_md, 0, sizeof(sig_md));
    sig_hex[0] = '\0';
    if (hashed_payload != NULL)
        hashed_payload[0] = '\0';
    if (hashed_canonical != NULL)
        hashed_canonical[0] = '\0';
    if (!tc3_input_ok(in))
        goto done;
    tc3_date(in->timestamp, date);
    snprintf(timestamp, sizeof(timestamp), "%lld", (long long)in->timestamp);
    content_type = tc3_header_value(in->content_type);
    host = tc3_header_value(in->host);
    if (content_type == NULL || host == NULL)
        goto done;
    if (tc3_sha256_hex(in->payload_len > 0 ? in->payload : "", in->payload_len, payload_hex) != 0)
        goto done;

    /* Canonical request, one item per line: method, URI, query, the headers ("name:value" each,
     * then an empty line), the signed header names and the hashed payload. */
    canonical =
        TC3_JOIN(in->method, "\n", in->path, "\n", in->query != NULL ? in->query : "",
                 "\ncontent-type:", content_type, "\nhost:", host, tc3_signed_line, payload_hex);
    if (canonical == NULL || tc3_sha256_hex(canonical, strlen(canonical), canonical_hex) != 0)
        goto done;
    /* String to sign: algorithm, timestamp, credential scope, hashed canonical request. */
    scope = TC3_JOIN(date, "/", in->service, "/tc3_request");
    if (scope == NULL)
        goto done;
    sts = TC3_JOIN(tc3_sts_head, timestamp, "\n", scope, "\n", canonical_hex);
    if (sts == NULL)
        goto done;
    if (tc3_signing_key(in->secret_key, date, in->service, k_signing) != 0 ||
        tc3_hmac(k_signing, sizeof(k_signing), sts, strlen(sts), sig_md) != 0)
        goto done;
    tc3_hex(sig_md, sizeof(sig_md), sig_hex);
    out = TC3_JOIN(tc3_auth_head, in->secret_id, "/", scope, tc3_auth_mid, sig_hex);
    if (out != NULL && hashed_payload != NULL)
        memcpy(hashed_payload, payload_hex, TC3_HEX_LEN);
    if (out != NULL && hashed_canonical != NULL)
        memcpy(hashed_canonical, canonical_hex, TC3_HEX_LEN);
done:
    OPENSSL_cleanse(k_signing, sizeof(k_signing));
    OPENSSL_cleanse(sig_md, sizeof(sig_md));
    OPENSSL_cleanse(sig_hex, sizeof(sig_hex));
    free(content_type);
    free(host);
    free(canonical);
    free(scope);
    free(sts);
    return out;
}

#undef TC3_JOIN

void clw_sign_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}
