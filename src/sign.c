/* Tencent Cloud API v2 request signing: string to sign, HMAC, Base64 and URL encoding. */
#include "clw/sign.h"

#include <limits.h>
#include <stdint.h>
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

int clw_sign_hmac_b64(enum clw_sign_method method, const char *key, size_t key_len, const char *msg,
                      size_t msg_len, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    const EVP_MD *evp = NULL;
    int ret = -1;

    if (out == NULL)
        return -1;
    out[0] = '\0';
    switch (method) {
    case CLW_SIGN_HMAC_SHA256:
        evp = EVP_sha256();
        break;
    case CLW_SIGN_HMAC_SHA1:
        evp = EVP_sha1();
        break;
    }
    if (evp == NULL || key_len > INT_MAX || (key == NULL && key_len > 0) ||
        (msg == NULL && msg_len > 0))
        goto done;
    if (key == NULL)
        key = "";
    if (msg == NULL)
        msg = "";
    if (HMAC(evp, key, (int)key_len, (const unsigned char *)msg, msg_len, md, &md_len) == NULL)
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

void clw_sign_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}
