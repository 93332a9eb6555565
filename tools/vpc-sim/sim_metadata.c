/* vpc-sim: the CVM metadata service's CAM role credentials (plain GETs, no signature). */
#include "sim.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define NOT_FOUND_HTML "<html><body><h1>404 Not Found</h1></body></html>\n"
#define NOT_JSON_HTML  "<html><body>metadata service busy</body></html>\n"

bool clw_sim_role_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n >= CLW_SIM_ROLE_MAX)
        return false;
    for (const char *c = name; *c != '\0'; c++) {
        if (!isalnum((unsigned char)*c) && strchr("+=,.@_-", *c) == NULL)
            return false;
    }
    return true;
}

/* The role's credential document: a fresh temporary credential, or the malformed document the
 * mode asks for. Returns the result key for the stats. Caller holds the lock. */
static const char *respond_credentials(struct clw_sim *sim, struct clw_sim_response *resp)
{
    const struct clw_sim_settings *set = &sim->settings;
    const struct clw_sim_tmpcred *cred = NULL;
    int64_t expires = clw_sim_now_s(sim) + set->temp_life_s;
    char account[CLW_SIM_ACCOUNT_MAX];
    char expiration[32];
    cJSON *doc;

    if (set->metadata.kind == CLW_SIM_SVC_NOT_JSON) {
        clw_sim_respond_text(resp, 200, "text/html", NOT_JSON_HTML);
        return "not-json";
    }
    if (set->metadata.kind != CLW_SIM_SVC_MISSING_FIELDS) {
        snprintf(account, sizeof(account), "cvm-role/%s", set->cvm_role);
        cred = clw_sim_tmpcreds_issue(&sim->tmpcreds, CLW_SIM_TMP_METADATA, account,
                                      clw_sim_now_s(sim), set->temp_life_s);
        if (cred == NULL) {
            clw_sim_respond_text(resp, 500, "text/plain", "cannot issue a credential\n");
            return "500";
        }
        expires = cred->expires;
        sim->stats.issued_metadata++;
    }
    clw_sim_rfc3339(expires, expiration, sizeof(expiration));
    doc = cJSON_CreateObject();
    if (cred != NULL) {
        cJSON_AddStringToObject(doc, "TmpSecretId", cred->secret_id);
        cJSON_AddStringToObject(doc, "TmpSecretKey", cred->secret_key);
    }
    cJSON_AddNumberToObject(doc, "ExpiredTime", (double)expires);
    cJSON_AddStringToObject(doc, "Expiration", expiration);
    if (cred != NULL)
        cJSON_AddStringToObject(doc, "Token", cred->token);
    cJSON_AddStringToObject(doc, "Code", "Success");
    clw_sim_respond_json(resp, 200, doc);
    return cred != NULL ? "200" : "missing-fields";
}

void clw_sim_metadata_handle(struct clw_sim *sim, const struct clw_sim_request *req,
                             const char *path, struct clw_sim_response *resp)
{
    const char *role = path + strlen(CLW_SIM_METADATA_PATH);
    const char *bound;
    const char *result;
    char buf[32];

    pthread_mutex_lock(&sim->lock);
    bound = sim->settings.cvm_role;
    sim->stats.metadata_requests++;
    if (clw_sim_respond_gone(&sim->settings.metadata, resp, buf, sizeof(buf))) {
        result = buf;
    } else if (strcmp(req->method, "GET") != 0) {
        clw_sim_respond_text(resp, 405, "text/plain", "method not allowed\n");
        result = "405";
    } else if (bound[0] == '\0' || (role[0] != '\0' && strcmp(role, bound) != 0)) {
        /* No role bound to the instance, or another role's name. */
        clw_sim_respond_text(resp, 404, "text/html", NOT_FOUND_HTML);
        result = "404";
    } else if (role[0] == '\0') {
        /* The role list: one name a line, no newline after the last. */
        clw_sim_respond_text(resp, 200, "text/plain", bound);
        result = "200";
    } else {
        result = respond_credentials(sim, resp);
    }
    clw_sim_counter_add(&sim->stats.metadata_results, result, 1);
    pthread_mutex_unlock(&sim->lock);
}
