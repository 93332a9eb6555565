/* vpc-sim: the simulator's own, independent v2 signature check (HmacSHA1 / HmacSHA256). */
#include "sim_sign.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

enum clw_sim_hmac clw_sim_sign_hmac_for(const char *signature_method)
{
    if (signature_method != NULL && strcmp(signature_method, "HmacSHA256") == 0)
        return CLW_SIM_HMAC_SHA256;
    return CLW_SIM_HMAC_SHA1;
}

static int by_name(const void *a, const void *b)
{
    const struct clw_sim_param *const *pa = a;
    const struct clw_sim_param *const *pb = b;

    /* strcmp compares as unsigned char: byte order. */
    return strcmp((*pa)->name, (*pb)->name);
}

char *clw_sim_sign_string(const char *method, const char *host, const char *path,
                          const struct clw_sim_params *params)
{
    const struct clw_sim_param **sorted = NULL;
    size_t n = 0;
    size_t len = strlen(method) + strlen(host) + strlen(path) + 2;
    char *out = NULL;
    char *p;

    sorted = malloc((params->count + 1) * sizeof(*sorted));
    if (sorted == NULL)
        goto fail;
    for (size_t i = 0; i < params->count; i++) {
        const struct clw_sim_param *prm = &params->items[i];

        if (strcmp(prm->name, "Signature") == 0)
            continue;
        sorted[n++] = prm;
        len += strlen(prm->name) + strlen(prm->value) + 2;
    }
    qsort(sorted, n, sizeof(*sorted), by_name);

    out = malloc(len);
    if (out == NULL)
        goto fail;
    p = out;
    p += sprintf(p, "%s%s%s?", method, host, path);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%s=%s", i == 0 ? "" : "&", sorted[i]->name, sorted[i]->value);

fail:
    free(sorted);
    return out;
}

int clw_sim_sign_hmac(enum clw_sim_hmac hmac, const char *key, const char *msg, char *out)
{
    const EVP_MD *md = hmac == CLW_SIM_HMAC_SHA256 ? EVP_sha256() : EVP_sha1();
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    int rc = -1;

    if (HMAC(md, key, (int)strlen(key), (const unsigned char *)msg, strlen(msg), mac, &mac_len) ==
        NULL)
        goto fail;
    EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len);
    rc = 0;

fail:
    OPENSSL_cleanse(mac, sizeof(mac));
    return rc;
}

bool clw_sim_sign_verify(const char *method, const char *host, const char *path,
                         const struct clw_sim_params *params, const char *key)
{
    const char *given = clw_sim_params_get(params, "Signature");
    enum clw_sim_hmac hmac = clw_sim_sign_hmac_for(clw_sim_params_get(params, "SignatureMethod"));
    char expected[CLW_SIM_SIG_MAX];
    char *sts = NULL;
    bool ok = false;
    size_t len;

    if (given == NULL)
        goto fail;
    sts = clw_sim_sign_string(method, host, path, params);
    if (sts == NULL || clw_sim_sign_hmac(hmac, key, sts, expected) != 0)
        goto fail;
    len = strlen(expected);
    ok = strlen(given) == len && CRYPTO_memcmp(given, expected, len) == 0;

fail:
    free(sts);
    return ok;
}

void clw_sim_sign_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}
