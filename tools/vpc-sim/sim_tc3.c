/* vpc-sim: the simulator's own, independent API 3.0 signature check (TC3-HMAC-SHA256). */
#include "sim_tc3.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

static const char hex_digits[] = "0123456789abcdef";

static void to_hex(const unsigned char *bin, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex_digits[bin[i] >> 4];
        out[2 * i + 1] = hex_digits[bin[i] & 15];
    }
    out[2 * len] = '\0';
}

void clw_sim_tc3_sha256_hex(const void *data, size_t len, char *out)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];

    SHA256(data, len, digest);
    to_hex(digest, sizeof(digest), out);
}

void clw_sim_tc3_date(int64_t unix_s, char *out, size_t outsz)
{
    time_t t = (time_t)unix_s;
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, outsz, "%Y-%m-%d", &tm) == 0)
        snprintf(out, outsz, "invalid");
}

/* ---- the Authorization header ----------------------------------------------------------- */

static const char *skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Copies [start, end) into out; -1 when empty or too long. */
static int copy_part(const char *start, const char *end, char *out, size_t outsz)
{
    size_t len = (size_t)(end - start);

    if (len == 0 || len >= outsz)
        return -1;
    memcpy(out, start, len);
    out[len] = '\0';
    return 0;
}

/* "ID/DATE/SERVICE/tc3_request" */
static int parse_credential(const char *start, const char *end, struct clw_sim_tc3_auth *auth)
{
    const char *parts[4];
    const char *p = start;
    char scope[16];

    for (int i = 0; i < 4; i++) {
        const char *slash = memchr(p, '/', (size_t)(end - p));

        parts[i] = p;
        if (i < 3 && slash == NULL)
            return -1;
        p = i < 3 ? slash + 1 : end;
    }
    if (copy_part(parts[0], parts[1] - 1, auth->secret_id, sizeof(auth->secret_id)) != 0 ||
        copy_part(parts[1], parts[2] - 1, auth->date, sizeof(auth->date)) != 0 ||
        copy_part(parts[2], parts[3] - 1, auth->service, sizeof(auth->service)) != 0 ||
        copy_part(parts[3], end, scope, sizeof(scope)) != 0 || strcmp(scope, "tc3_request") != 0)
        return -1;
    /* YYYY-MM-DD */
    for (size_t i = 0; i < 10; i++) {
        bool dash = i == 4 || i == 7;

        if (dash ? auth->date[i] != '-' : !isdigit((unsigned char)auth->date[i]))
            return -1;
    }
    return auth->date[10] == '\0' ? 0 : -1;
}

static bool is_hex64(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        if (!isxdigit((unsigned char)s[n]))
            return false;
    }
    return n == 64;
}

int clw_sim_tc3_parse_auth(const char *header, struct clw_sim_tc3_auth *auth)
{
    static const char algo[] = CLW_SIM_TC3_ALGORITHM;
    bool seen_cred = false;
    bool seen_headers = false;
    bool seen_sig = false;
    const char *p;

    memset(auth, 0, sizeof(*auth));
    if (header == NULL || strncmp(header, algo, sizeof(algo) - 1) != 0 ||
        (header[sizeof(algo) - 1] != ' ' && header[sizeof(algo) - 1] != '\t'))
        return -1;
    p = skip_blanks(header + sizeof(algo) - 1);
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        const char *eq;
        const char *value_end;
        int rc;

        end = end != NULL ? end : p + strlen(p);
        value_end = end;
        while (value_end > p && (value_end[-1] == ' ' || value_end[-1] == '\t'))
            value_end--;
        eq = memchr(p, '=', (size_t)(value_end - p));
        if (eq == NULL)
            return -1;
        if ((size_t)(eq - p) == 10 && strncmp(p, "Credential", 10) == 0 && !seen_cred) {
            rc = parse_credential(eq + 1, value_end, auth);
            seen_cred = true;
        } else if ((size_t)(eq - p) == 13 && strncmp(p, "SignedHeaders", 13) == 0 &&
                   !seen_headers) {
            rc = copy_part(eq + 1, value_end, auth->signed_headers, sizeof(auth->signed_headers));
            seen_headers = true;
        } else if ((size_t)(eq - p) == 9 && strncmp(p, "Signature", 9) == 0 && !seen_sig) {
            rc = copy_part(eq + 1, value_end, auth->signature, sizeof(auth->signature));
            seen_sig = true;
        } else {
            rc = -1; /* unknown or repeated part */
        }
        if (rc != 0)
            return -1;
        p = *end == ',' ? skip_blanks(end + 1) : end;
    }
    if (!seen_cred || !seen_headers || !seen_sig || !is_hex64(auth->signature))
        return -1;
    return 0;
}

/* ---- canonical request and string to sign ----------------------------------------------- */

int clw_sim_tc3_add_header(char *out, size_t outsz, const char *name, const char *value)
{
    size_t len = strlen(out);
    const char *end;

    value = skip_blanks(value);
    end = value + strlen(value);
    while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (len + strlen(name) + 1 + (size_t)(end - value) + 2 > outsz)
        return -1;
    for (const char *s = name; *s != '\0'; s++)
        out[len++] = (char)tolower((unsigned char)*s);
    out[len++] = ':';
    for (const char *s = value; s < end; s++)
        out[len++] = (char)tolower((unsigned char)*s);
    out[len++] = '\n';
    out[len] = '\0';
    return 0;
}

char *clw_sim_tc3_canonical_request(const char *method, const char *canonical_headers,
                                    const char *signed_headers, const char *hashed_payload)
{
    size_t len = strlen(method) + strlen(canonical_headers) + strlen(signed_headers) +
                 strlen(hashed_payload) + 8;
    char *out = malloc(len);

    if (out != NULL)
        snprintf(out, len, "%s\n/\n\n%s\n%s\n%s", method, canonical_headers, signed_headers,
                 hashed_payload);
    return out;
}

char *clw_sim_tc3_string_to_sign(const char *timestamp, const char *date, const char *service,
                                 const char *canonical_request)
{
    char hashed[CLW_SIM_TC3_HEX];
    size_t len;
    char *out;

    clw_sim_tc3_sha256_hex(canonical_request, strlen(canonical_request), hashed);
    len = sizeof(CLW_SIM_TC3_ALGORITHM) + strlen(timestamp) + strlen(date) + strlen(service) +
          sizeof("tc3_request") + sizeof(hashed) + 8;
    out = malloc(len);
    if (out != NULL)
        snprintf(out, len, "%s\n%s\n%s/%s/tc3_request\n%s", CLW_SIM_TC3_ALGORITHM, timestamp, date,
                 service, hashed);
    return out;
}

static int hmac256(const void *key, size_t key_len, const char *msg, unsigned char *out)
{
    unsigned int out_len = 0;

    if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out,
             &out_len) == NULL ||
        out_len != SHA256_DIGEST_LENGTH)
        return -1;
    return 0;
}

int clw_sim_tc3_sign(const char *secret_key, const char *date, const char *service,
                     const char *string_to_sign, char *out)
{
    unsigned char k_date[SHA256_DIGEST_LENGTH];
    unsigned char k_service[SHA256_DIGEST_LENGTH];
    unsigned char k_signing[SHA256_DIGEST_LENGTH];
    unsigned char mac[SHA256_DIGEST_LENGTH];
    size_t key_len = strlen(secret_key) + 3; /* "TC3" + key */
    char *key = malloc(key_len + 1);
    int rc = -1;

    if (key == NULL)
        goto fail;
    snprintf(key, key_len + 1, "TC3%s", secret_key);
    if (hmac256(key, key_len, date, k_date) != 0 ||
        hmac256(k_date, sizeof(k_date), service, k_service) != 0 ||
        hmac256(k_service, sizeof(k_service), "tc3_request", k_signing) != 0 ||
        hmac256(k_signing, sizeof(k_signing), string_to_sign, mac) != 0)
        goto fail;
    to_hex(mac, sizeof(mac), out);
    rc = 0;

fail:
    if (key != NULL) {
        OPENSSL_cleanse(key, key_len);
        free(key);
    }
    OPENSSL_cleanse(k_date, sizeof(k_date));
    OPENSSL_cleanse(k_service, sizeof(k_service));
    OPENSSL_cleanse(k_signing, sizeof(k_signing));
    return rc;
}

bool clw_sim_tc3_equal(const char *a, const char *b)
{
    size_t len = strlen(a);

    return strlen(b) == len && CRYPTO_memcmp(a, b, len) == 0;
}
