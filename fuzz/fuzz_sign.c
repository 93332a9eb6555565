/* Fuzz target: URL encoding, the v2 string to sign and the signed query, against an oracle. */
#include "fuzz.h"

#include <string.h>

#include "clw/sign.h"

/*
 * Input: byte 0 picks the HMAC (bit 0) and the HTTP method (bit 1); the rest is split into
 * lines: host, path, secret key, then one "name=value" parameter a line (no '=': empty
 * value). Every line is also URL-encoded on its own.
 */
#define SGN_MAX_PARAMS 64

static int sgn_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

static int sgn_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lower case is not what the encoder writes */
}

/* Decodes n bytes of an encoded string into out (room for n + 1); -1 when malformed. */
static int sgn_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n)
                return -1;
            if (sgn_hex(s[i + 1]) < 0 || sgn_hex(s[i + 2]) < 0)
                return -1;
            out[o++] = (char)(sgn_hex(s[i + 1]) * 16 + sgn_hex(s[i + 2]));
            i += 2;
        } else if (sgn_unreserved((unsigned char)s[i])) {
            out[o++] = s[i];
        } else {
            return -1;
        }
    }
    out[o] = '\0';
    return 0;
}

/* clw_url_encode(s) uses only unreserved bytes and %XX, and decodes back to s. */
static void sgn_check_encode(const char *s)
{
    char *enc = clw_url_encode(s);
    char *dec;
    size_t want = 0;

    CLW_FUZZ_CHECK(enc != NULL);
    for (const char *p = s; *p != '\0'; p++)
        want += sgn_unreserved((unsigned char)*p) ? 1 : 3;
    CLW_FUZZ_CHECK(strlen(enc) == want);
    dec = malloc(want + 1);
    CLW_FUZZ_CHECK(dec != NULL);
    CLW_FUZZ_CHECK(sgn_decode(enc, want, dec) == 0);
    CLW_FUZZ_CHECK(strcmp(dec, s) == 0);
    free(dec);
    free(enc);
}

static int sgn_name_cmp(const char *x, const char *y)
{
    for (;; x++, y++) {
        unsigned char a = *x == '_' ? '.' : (unsigned char)*x;
        unsigned char b = *y == '_' ? '.' : (unsigned char)*y;

        if (a != b || a == '\0')
            return (int)a - (int)b;
    }
}

/* The string to sign, built independently: a stable insertion sort by transformed name. */
static char *sgn_oracle(const char *method, const char *host, const char *path,
                        const struct clw_param *params, size_t n)
{
    size_t order[SGN_MAX_PARAMS];
    size_t total = strlen(method) + strlen(host) + strlen(path) + 2;
    char *out, *p;

    for (size_t i = 0; i < n; i++) {
        size_t j = i;

        while (j > 0 && sgn_name_cmp(params[order[j - 1]].name, params[i].name) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
        total += strlen(params[i].name) + strlen(params[i].value) + 2;
    }
    out = malloc(total);
    CLW_FUZZ_CHECK(out != NULL);
    p = out + sprintf(out, "%s%s%s?", method, host, path);
    for (size_t i = 0; i < n; i++) {
        const struct clw_param *q = &params[order[i]];

        if (i > 0)
            *p++ = '&';
        for (const char *c = q->name; *c != '\0'; c++)
            *p++ = *c == '_' ? '.' : *c;
        *p++ = '=';
        strcpy(p, q->value);
        p += strlen(q->value);
    }
    *p = '\0';
    return out;
}

static void sgn_check_query(enum clw_sign_method hmac, const char *method, const char *host,
                            const char *path, const char *key, const struct clw_param *params,
                            size_t n)
{
    char *sts = clw_sign_string_to_sign(method, host, path, params, n);
    char *want = sgn_oracle(method, host, path, params, n);
    char *query = clw_sign_v2_query(hmac, method, host, path, params, n, key);
    char sig[CLW_SIGN_B64_MAX];
    char got[CLW_SIGN_B64_MAX * 3 + 1];
    const char *at;
    size_t amps = 0, eqs = 0, sig_len;

    CLW_FUZZ_CHECK(sts != NULL && query != NULL);
    CLW_FUZZ_CHECK(strcmp(sts, want) == 0);
    /* Only encoded bytes and the separators: no parameter can smuggle in another. */
    for (const char *c = query; *c != '\0'; c++) {
        CLW_FUZZ_CHECK(sgn_unreserved((unsigned char)*c) || *c == '%' || *c == '&' || *c == '=');
        amps += *c == '&';
        eqs += *c == '=';
    }
    CLW_FUZZ_CHECK(amps == n && eqs == n + 1);
    /* The signature is the last pair. */
    at = strrchr(query, '&');
    at = at != NULL ? at + 1 : query;
    CLW_FUZZ_CHECK(strncmp(at, "Signature=", strlen("Signature=")) == 0);
    at += strlen("Signature=");
    sig_len = strlen(at);
    CLW_FUZZ_CHECK(sig_len < sizeof(got));
    CLW_FUZZ_CHECK(sgn_decode(at, sig_len, got) == 0);
    CLW_FUZZ_CHECK(clw_sign_hmac_b64(hmac, key, strlen(key), sts, strlen(sts), sig) == 0);
    CLW_FUZZ_CHECK(strlen(sig) == (hmac == CLW_SIGN_HMAC_SHA256 ? 44u : 28u));
    CLW_FUZZ_CHECK(strcmp(sig, got) == 0);
    free(query);
    free(want);
    free(sts);
}

int clw_fuzz_sign(const uint8_t *data, size_t size)
{
    struct clw_param params[SGN_MAX_PARAMS];
    const char *lines[3] = {"", "", ""};
    enum clw_sign_method hmac;
    const char *method;
    size_t n = 0, k = 0;
    char *text, *line, *next;

    if (size == 0)
        return 0;
    hmac = (data[0] & 1) ? CLW_SIGN_HMAC_SHA256 : CLW_SIGN_HMAC_SHA1;
    method = (data[0] & 2) ? "POST" : "GET";
    text = malloc(size);
    CLW_FUZZ_CHECK(text != NULL);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    for (line = text; line != NULL; line = next) {
        char *eq;

        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        sgn_check_encode(line);
        if (k < 3) {
            lines[k++] = line;
            continue;
        }
        eq = strchr(line, '=');
        if (eq != NULL)
            *eq++ = '\0';
        /* The caller never passes Signature itself (the header's precondition). */
        if (n == SGN_MAX_PARAMS || strcmp(line, "Signature") == 0)
            continue;
        params[n].name = line;
        params[n].value = eq != NULL ? eq : "";
        n++;
    }
    sgn_check_query(hmac, method, lines[0], lines[1], lines[2], params, n);
    free(text);
    return 0;
}

#ifndef CLW_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return clw_fuzz_sign(data, size);
}
#endif
