/* Fuzz target: the simulator's query/form decoding and signature check, and the worker's
 * signer checked against it. */
#include "fuzz.h"

#include <string.h>

#include "../tools/vpc-sim/sim_params.h"
#include "../tools/vpc-sim/sim_sign.h"
#include "clw/sign.h"

/*
 * Input: byte 0 bit 0 picks the mode, bit 1 the HTTP method, bit 2 the HMAC.
 *  mode 0: the rest is a query string or form body for clw_sim_params_parse; what it decodes
 *          must be well formed, and once signed by the simulator itself must verify.
 *  mode 1: the rest is lines: the secret key, then the values of the parameters the worker
 *          sends; the worker signs them, the simulator decodes the query and must verify it
 *          and get every value back unchanged.
 */
#define SIM_HOST "vpc.api.qcloud.com"
#define SIM_PATH "/v2/index.php"

static const char *const sim_names[] = {
    "Action",        "Nonce",         "Region",        "SecretId",      "Timestamp",
    "Token",         "vpcId",         "instanceIds.0", "instanceIds.1", "instanceIds.2",
    "instanceIds.3", "instanceIds.4", "instanceIds.5", "instanceIds.6", "instanceIds.7",
};
#define SIM_NAMES (sizeof(sim_names) / sizeof(sim_names[0]))

static void sim_check_decoded(const struct clw_sim_params *params)
{
    CLW_FUZZ_CHECK(params->count <= CLW_SIM_PARAMS_MAX && params->count <= params->cap);
    for (size_t i = 0; i < params->count; i++) {
        const char *name = params->items[i].name;

        CLW_FUZZ_CHECK(name != NULL && name[0] != '\0' && strchr(name, '_') == NULL);
        CLW_FUZZ_CHECK(params->items[i].value != NULL);
        /* Names are unique, so the lookup finds this very entry. */
        CLW_FUZZ_CHECK(clw_sim_params_get(params, name) == params->items[i].value);
    }
}

static void sim_decode_mode(const char *method, const uint8_t *data, size_t size)
{
    struct clw_sim_params params;
    enum clw_sim_params_err err;
    char *body = size > 0 ? malloc(size) : NULL; /* exact size: over-reads are caught */
    char sig[CLW_SIM_SIG_MAX];
    char *sts;

    CLW_FUZZ_CHECK(size == 0 || body != NULL);
    if (size > 0)
        memcpy(body, data, size);
    memset(&params, 0, sizeof(params));
    err = clw_sim_params_parse(&params, body, size);
    CLW_FUZZ_CHECK(err >= CLW_SIM_PARAMS_OK && err <= CLW_SIM_PARAMS_NOMEM);
    CLW_FUZZ_CHECK(clw_sim_params_strerror(err) != NULL);
    sim_check_decoded(&params);
    if (err == CLW_SIM_PARAMS_OK) {
        int has_sig = clw_sim_params_get(&params, "Signature") != NULL;

        /* Whatever signature the input carries, it is not this key's (a 1 in 2^160 chance). */
        if (has_sig)
            CLW_FUZZ_CHECK(!clw_sim_sign_verify(method, SIM_HOST, SIM_PATH, &params, "k"));
        sts = clw_sim_sign_string(method, SIM_HOST, SIM_PATH, &params);
        CLW_FUZZ_CHECK(sts != NULL);
        if (!has_sig && params.count < CLW_SIM_PARAMS_MAX) {
            enum clw_sim_hmac hmac =
                clw_sim_sign_hmac_for(clw_sim_params_get(&params, "SignatureMethod"));

            CLW_FUZZ_CHECK(clw_sim_sign_hmac(hmac, "k", sts, sig) == 0);
            CLW_FUZZ_CHECK(clw_sim_params_add(&params, "Signature", sig) == CLW_SIM_PARAMS_OK);
            CLW_FUZZ_CHECK(clw_sim_sign_verify(method, SIM_HOST, SIM_PATH, &params, "k"));
        }
        free(sts);
    }
    clw_sim_params_free(&params);
    free(body);
}

static void sim_signer_mode(const char *method, int sha256, const uint8_t *data, size_t size)
{
    struct clw_param params[SIM_NAMES + 1];
    struct clw_sim_params got;
    const char *key = NULL;
    size_t n = 0;
    char *text = malloc(size + 1);
    char *line, *next, *query;

    CLW_FUZZ_CHECK(text != NULL);
    if (size > 0)
        memcpy(text, data, size);
    text[size] = '\0';
    for (line = text; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (key == NULL) {
            key = line;
        } else if (n < SIM_NAMES) {
            params[n].name = sim_names[n];
            params[n].value = line;
            n++;
        }
    }
    if (key == NULL)
        key = "";
    if (sha256) {
        params[n].name = "SignatureMethod";
        params[n].value = "HmacSHA256";
        n++;
    }
    query = clw_sign_v2_query(sha256 ? CLW_SIGN_HMAC_SHA256 : CLW_SIGN_HMAC_SHA1, method, SIM_HOST,
                              SIM_PATH, params, n, key);
    CLW_FUZZ_CHECK(query != NULL);
    memset(&got, 0, sizeof(got));
    CLW_FUZZ_CHECK(clw_sim_params_parse(&got, query, strlen(query)) == CLW_SIM_PARAMS_OK);
    CLW_FUZZ_CHECK(got.count == n + 1);
    for (size_t i = 0; i < n; i++) {
        const char *v = clw_sim_params_get(&got, params[i].name);

        CLW_FUZZ_CHECK(v != NULL && strcmp(v, params[i].value) == 0);
    }
    CLW_FUZZ_CHECK(clw_sim_sign_verify(method, SIM_HOST, SIM_PATH, &got, key));
    clw_sim_params_free(&got);
    free(query);
    free(text);
}

int clw_fuzz_sim_params(const uint8_t *data, size_t size)
{
    const char *method;

    if (size == 0)
        return 0;
    method = (data[0] & 2) ? "POST" : "GET";
    if (data[0] & 1)
        sim_signer_mode(method, (data[0] & 4) != 0, data + 1, size - 1);
    else
        sim_decode_mode(method, data + 1, size - 1);
    return 0;
}

#ifndef CLW_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return clw_fuzz_sim_params(data, size);
}
#endif
