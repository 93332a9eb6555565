/* vpc-sim: the /_sim/ admin endpoints tests use to read and steer the simulator. */
#include "sim.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void respond_error(struct clw_sim_response *resp, int status, const char *message)
{
    cJSON *doc = cJSON_CreateObject();

    cJSON_AddStringToObject(doc, "error", message);
    clw_sim_respond_json(resp, status, doc);
}

static void respond_ok(struct clw_sim_response *resp)
{
    cJSON *doc = cJSON_CreateObject();

    cJSON_AddBoolToObject(doc, "ok", true);
    clw_sim_respond_json(resp, 200, doc);
}

static cJSON *parse_body(const struct clw_sim_request *req, struct clw_sim_response *resp)
{
    cJSON *doc = cJSON_ParseWithLength(req->body != NULL ? req->body : "", req->body_len);

    if (doc == NULL)
        respond_error(resp, 400, "body is not valid JSON");
    return doc;
}

static const char *expired_code_name(enum clw_sim_expired_code code)
{
    return code == CLW_SIM_EXPIRED_SECRET_ID_UNKNOWN ? "AuthFailure.SecretIdNotFound"
                                                     : "AuthFailure.TokenFailure";
}

int clw_sim_expired_code_parse(const char *text, enum clw_sim_expired_code *out)
{
    if (strcmp(text, "AuthFailure.TokenFailure") == 0)
        *out = CLW_SIM_EXPIRED_TOKEN_FAILURE;
    else if (strcmp(text, "AuthFailure.SecretIdNotFound") == 0)
        *out = CLW_SIM_EXPIRED_SECRET_ID_UNKNOWN;
    else
        return -1;
    return 0;
}

static cJSON *settings_json(const struct clw_sim_settings *set)
{
    cJSON *doc = cJSON_CreateObject();
    char mode[32];

    cJSON_AddStringToObject(doc, "sameVpcAttach",
                            set->rules.same_vpc_attach_ok ? "success" : "error");
    cJSON_AddStringToObject(doc, "detachUnlinked",
                            set->rules.detach_unlinked_ok ? "success" : "error");
    cJSON_AddNumberToObject(doc, "businessCode", set->rules.business_code);
    cJSON_AddNumberToObject(doc, "taskDelayMs", (double)set->rules.task_delay_ms);
    cJSON_AddNumberToObject(doc, "windowSec", (double)set->window_s);
    cJSON_AddNumberToObject(doc, "clockSkewSec", (double)set->clock_skew_s);
    cJSON_AddNumberToObject(doc, "maxInstances", (double)set->max_instances);
    cJSON_AddNumberToObject(doc, "quota", set->quota);
    cJSON_AddNumberToObject(doc, "quotaReserve", set->quota_reserve);
    cJSON_AddBoolToObject(doc, "quotaPerRegion", set->quota_per_region);
    cJSON_AddStringToObject(doc, "cvmRole", set->cvm_role);
    cJSON_AddNumberToObject(doc, "tempCredentialLifeSec", (double)set->temp_life_s);
    cJSON_AddStringToObject(doc, "expiredCredentialCode", expired_code_name(set->expired_code));
    clw_sim_svcmode_format(&set->metadata, mode, sizeof(mode));
    cJSON_AddStringToObject(doc, "metadata", mode);
    clw_sim_svcmode_format(&set->sts, mode, sizeof(mode));
    cJSON_AddStringToObject(doc, "sts", mode);
    cJSON_AddStringToObject(doc, "oidcTokenFile", set->oidc_token_file);
    cJSON_AddStringToObject(doc, "oidcProviderId", set->oidc_provider_id);
    cJSON_AddStringToObject(doc, "oidcRoleArn", set->oidc_role_arn);
    cJSON_AddStringToObject(doc, "stsProviderErrorCode", set->sts_provider_error);
    cJSON_AddStringToObject(doc, "stsRoleErrorCode", set->sts_role_error);
    return doc;
}

static int read_choice(const cJSON *doc, const char *key, bool *out, char *err, size_t errsz)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, key);

    if (item == NULL)
        return 0;
    if (cJSON_IsString(item) && strcmp(item->valuestring, "success") == 0) {
        *out = true;
    } else if (cJSON_IsString(item) && strcmp(item->valuestring, "error") == 0) {
        *out = false;
    } else {
        snprintf(err, errsz, "%s must be \"success\" or \"error\"", key);
        return -1;
    }
    return 0;
}

static int read_int(const cJSON *doc, const char *key, double min, double max, int64_t *out,
                    char *err, size_t errsz)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, key);

    if (item == NULL)
        return 0;
    if (!cJSON_IsNumber(item) || item->valuedouble < min || item->valuedouble > max) {
        snprintf(err, errsz, "%s must be a number in [%.0f, %.0f]", key, min, max);
        return -1;
    }
    *out = (int64_t)item->valuedouble;
    return 0;
}

static int read_bool(const cJSON *doc, const char *key, bool *out, char *err, size_t errsz)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, key);

    if (item == NULL)
        return 0;
    if (!cJSON_IsBool(item)) {
        snprintf(err, errsz, "%s must be true or false", key);
        return -1;
    }
    *out = cJSON_IsTrue(item);
    return 0;
}

/* A string member into out (outsz bytes): "" when empty_ok, else one that ok() accepts. */
static int read_text(const cJSON *doc, const char *key, bool (*ok)(const char *), bool empty_ok,
                     char *out, size_t outsz, char *err, size_t errsz)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, key);

    if (item == NULL)
        return 0;
    if (!cJSON_IsString(item) || strlen(item->valuestring) >= outsz ||
        (item->valuestring[0] == '\0' ? !empty_ok : (ok != NULL && !ok(item->valuestring)))) {
        snprintf(err, errsz, "%s: not a valid value", key);
        return -1;
    }
    snprintf(out, outsz, "%s", item->valuestring);
    return 0;
}

static int read_mode(const cJSON *doc, const char *key, struct clw_sim_svcmode *out, char *err,
                     size_t errsz)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, key);

    if (item == NULL)
        return 0;
    if (!cJSON_IsString(item) || clw_sim_svcmode_parse(item->valuestring, out) != 0) {
        snprintf(err, errsz, "%s must be up, drop, http:N (400..599), not-json or missing-fields",
                 key);
        return -1;
    }
    return 0;
}

static int read_expired_code(const cJSON *doc, enum clw_sim_expired_code *out, char *err,
                             size_t errsz)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, "expiredCredentialCode");

    if (item == NULL)
        return 0;
    if (!cJSON_IsString(item) || clw_sim_expired_code_parse(item->valuestring, out) != 0) {
        snprintf(err, errsz,
                 "expiredCredentialCode must be AuthFailure.TokenFailure or "
                 "AuthFailure.SecretIdNotFound");
        return -1;
    }
    return 0;
}

/* The temporary-credential members of a settings document onto *next. */
static int apply_credential_settings(struct clw_sim_settings *next, const cJSON *doc, char *err,
                                     size_t errsz)
{
    if (read_text(doc, "cvmRole", clw_sim_role_name_ok, true, next->cvm_role,
                  sizeof(next->cvm_role), err, errsz) != 0 ||
        read_int(doc, "tempCredentialLifeSec", 1, CLW_SIM_LIFE_MAX_S, &next->temp_life_s, err,
                 errsz) != 0 ||
        read_expired_code(doc, &next->expired_code, err, errsz) != 0 ||
        read_mode(doc, "metadata", &next->metadata, err, errsz) != 0 ||
        read_mode(doc, "sts", &next->sts, err, errsz) != 0 ||
        read_text(doc, "oidcTokenFile", NULL, true, next->oidc_token_file,
                  sizeof(next->oidc_token_file), err, errsz) != 0 ||
        read_text(doc, "oidcProviderId", clw_sim_oidc_value_ok, true, next->oidc_provider_id,
                  sizeof(next->oidc_provider_id), err, errsz) != 0 ||
        read_text(doc, "oidcRoleArn", clw_sim_oidc_value_ok, true, next->oidc_role_arn,
                  sizeof(next->oidc_role_arn), err, errsz) != 0 ||
        read_text(doc, "stsProviderErrorCode", clw_sim_error_code_ok, false,
                  next->sts_provider_error, sizeof(next->sts_provider_error), err, errsz) != 0 ||
        read_text(doc, "stsRoleErrorCode", clw_sim_error_code_ok, false, next->sts_role_error,
                  sizeof(next->sts_role_error), err, errsz) != 0)
        return -1;
    return 0;
}

/* Applies a settings document onto *set; nothing changes on error. */
static int apply_settings(struct clw_sim_settings *set, const cJSON *doc, char *err, size_t errsz)
{
    static const char *const keys[] = {
        "sameVpcAttach",
        "detachUnlinked",
        "businessCode",
        "taskDelayMs",
        "windowSec",
        "clockSkewSec",
        "maxInstances",
        "quota",
        "quotaReserve",
        "quotaPerRegion",
        "cvmRole",
        "tempCredentialLifeSec",
        "expiredCredentialCode",
        "metadata",
        "sts",
        "oidcTokenFile",
        "oidcProviderId",
        "oidcRoleArn",
        "stsProviderErrorCode",
        "stsRoleErrorCode",
    };
    struct clw_sim_settings next = *set;
    int64_t code = next.rules.business_code;
    int64_t max = (int64_t)next.max_instances;
    int64_t quota = next.quota;
    int64_t reserve = next.quota_reserve;
    const cJSON *item;

    if (!cJSON_IsObject(doc)) {
        snprintf(err, errsz, "expected a JSON object");
        return -1;
    }
    cJSON_ArrayForEach(item, doc)
    {
        bool known = false;

        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            known = known || strcmp(item->string, keys[i]) == 0;
        if (!known) {
            snprintf(err, errsz, "unknown key \"%s\"", item->string);
            return -1;
        }
    }
    if (read_choice(doc, "sameVpcAttach", &next.rules.same_vpc_attach_ok, err, errsz) != 0 ||
        read_choice(doc, "detachUnlinked", &next.rules.detach_unlinked_ok, err, errsz) != 0 ||
        read_int(doc, "businessCode", 1, 999999, &code, err, errsz) != 0 ||
        read_int(doc, "taskDelayMs", 0, 86400000, &next.rules.task_delay_ms, err, errsz) != 0 ||
        read_int(doc, "windowSec", 1, 86400 * 365, &next.window_s, err, errsz) != 0 ||
        read_int(doc, "clockSkewSec", -86400 * 365, 86400 * 365, &next.clock_skew_s, err, errsz) !=
            0 ||
        read_int(doc, "maxInstances", 1, 1000, &max, err, errsz) != 0 ||
        read_int(doc, "quota", 0, CLW_SIM_QUOTA_MAX, &quota, err, errsz) != 0 ||
        read_int(doc, "quotaReserve", 0, CLW_SIM_QUOTA_MAX, &reserve, err, errsz) != 0 ||
        read_bool(doc, "quotaPerRegion", &next.quota_per_region, err, errsz) != 0 ||
        apply_credential_settings(&next, doc, err, errsz) != 0)
        return -1;
    next.rules.business_code = (int)code;
    next.max_instances = (size_t)max;
    if (reserve > 0 && quota > 0 && reserve >= quota) {
        snprintf(err, errsz, "quotaReserve %lld must be below quota %lld", (long long)reserve,
                 (long long)quota);
        return -1;
    }
    next.quota = (uint32_t)quota;
    next.quota_reserve = (uint32_t)reserve;
    *set = next;
    return 0;
}

/* Rebuilds the state from seed and zeroes the counters and the quota's memory. Caller holds
 * the lock. On failure nothing changes. */
static int load_seed(struct clw_sim *sim, const cJSON *seed, char *err, size_t errsz)
{
    struct clw_sim_state fresh;

    if (clw_sim_state_load(&fresh, seed, clw_sim_state_next_task_id(&sim->state), err, errsz) != 0)
        return -1;
    clw_sim_state_free(&sim->state);
    sim->state = fresh;
    clw_sim_stats_free(&sim->stats);
    clw_sim_quota_free(&sim->quota);
    return 0;
}

static void handle_reset(struct clw_sim *sim, struct clw_sim_response *resp)
{
    char err[256];
    int rc;

    pthread_mutex_lock(&sim->lock);
    rc = load_seed(sim, sim->seed, err, sizeof(err));
    if (rc == 0) {
        clw_sim_faults_free(&sim->faults);
        clw_sim_faults_init(&sim->faults, sim->rng_seed);
        if (sim->initial_faults != NULL)
            clw_sim_faults_apply_json(&sim->faults, sim->initial_faults, err, sizeof(err));
        sim->settings = sim->initial_settings;
    }
    pthread_mutex_unlock(&sim->lock);
    if (rc != 0)
        respond_error(resp, 500, err);
    else
        respond_ok(resp);
}

static void handle_seed(struct clw_sim *sim, const struct clw_sim_request *req,
                        struct clw_sim_response *resp)
{
    cJSON *seed = parse_body(req, resp);
    cJSON *summary;
    char err[256];
    int rc;

    if (seed == NULL)
        return;
    pthread_mutex_lock(&sim->lock);
    rc = load_seed(sim, seed, err, sizeof(err));
    if (rc == 0) {
        cJSON_Delete(sim->seed);
        sim->seed = seed;
        seed = NULL;
    }
    summary = cJSON_CreateObject();
    cJSON_AddBoolToObject(summary, "ok", true);
    cJSON_AddNumberToObject(summary, "vpcs", (double)sim->state.nvpcs);
    cJSON_AddNumberToObject(summary, "instances", (double)sim->state.ninstances);
    pthread_mutex_unlock(&sim->lock);
    cJSON_Delete(seed);
    if (rc != 0) {
        cJSON_Delete(summary);
        respond_error(resp, 400, err);
    } else {
        clw_sim_respond_json(resp, 200, summary);
    }
}

/* A document endpoint: GET renders it; POST applies the JSON body under the lock first (all
 * or nothing), then renders it. */
static void handle_document(struct clw_sim *sim, const struct clw_sim_request *req,
                            struct clw_sim_response *resp,
                            int (*apply)(struct clw_sim *, const cJSON *, char *, size_t),
                            cJSON *(*render)(const struct clw_sim *))
{
    cJSON *doc = NULL;
    cJSON *out;
    char err[256];
    int rc = 0;

    if (strcmp(req->method, "POST") == 0) {
        doc = parse_body(req, resp);
        if (doc == NULL)
            return;
    }
    pthread_mutex_lock(&sim->lock);
    if (doc != NULL)
        rc = apply(sim, doc, err, sizeof(err));
    out = render(sim);
    pthread_mutex_unlock(&sim->lock);
    cJSON_Delete(doc);
    if (rc != 0) {
        cJSON_Delete(out);
        respond_error(resp, 400, err);
    } else {
        clw_sim_respond_json(resp, 200, out);
    }
}

static int apply_faults_doc(struct clw_sim *sim, const cJSON *doc, char *err, size_t errsz)
{
    return clw_sim_faults_apply_json(&sim->faults, doc, err, errsz);
}

static cJSON *render_faults(const struct clw_sim *sim)
{
    return clw_sim_faults_to_json(&sim->faults);
}

static int apply_config_doc(struct clw_sim *sim, const cJSON *doc, char *err, size_t errsz)
{
    return apply_settings(&sim->settings, doc, err, errsz);
}

static cJSON *render_config(const struct clw_sim *sim)
{
    return settings_json(&sim->settings);
}

static void handle_stats(struct clw_sim *sim, struct clw_sim_response *resp)
{
    cJSON *doc;

    pthread_mutex_lock(&sim->lock);
    doc = clw_sim_stats_to_json(&sim->stats, (int64_t)time(NULL));
    if (doc != NULL) {
        cJSON_AddNumberToObject(doc, "quota", sim->settings.quota);
        cJSON_AddNumberToObject(doc, "quotaReserve", sim->settings.quota_reserve);
        cJSON_AddNumberToObject(doc, "reserveAdmitted", (double)sim->quota.reserve_admitted);
        cJSON_AddNumberToObject(doc, "noncesRemembered", (double)sim->nonces.count);
        cJSON_AddNumberToObject(doc, "nextTaskId", (double)clw_sim_state_next_task_id(&sim->state));
        cJSON_AddNumberToObject(cJSON_GetObjectItemCaseSensitive(doc, "tempCredentials"), "live",
                                (double)clw_sim_tmpcreds_live(&sim->tmpcreds, clw_sim_now_s(sim)));
    }
    pthread_mutex_unlock(&sim->lock);
    clw_sim_respond_json(resp, 200, doc);
}

static void handle_state(struct clw_sim *sim, struct clw_sim_response *resp)
{
    cJSON *doc;

    pthread_mutex_lock(&sim->lock);
    doc = clw_sim_state_to_json(&sim->state, clw_sim_now_ms());
    pthread_mutex_unlock(&sim->lock);
    clw_sim_respond_json(resp, 200, doc);
}

void clw_sim_admin_handle(struct clw_sim *sim, const struct clw_sim_request *req, const char *path,
                          struct clw_sim_response *resp)
{
    const char *name = path + strlen(CLW_SIM_ADMIN_PATH);
    bool get = strcmp(req->method, "GET") == 0;
    bool post = strcmp(req->method, "POST") == 0;

    if (strcmp(name, "state") == 0 && get)
        handle_state(sim, resp);
    else if (strcmp(name, "stats") == 0 && get)
        handle_stats(sim, resp);
    else if (strcmp(name, "reset") == 0 && post)
        handle_reset(sim, resp);
    else if (strcmp(name, "seed") == 0 && post)
        handle_seed(sim, req, resp);
    else if (strcmp(name, "faults") == 0 && (get || post))
        handle_document(sim, req, resp, apply_faults_doc, render_faults);
    else if (strcmp(name, "config") == 0 && (get || post))
        handle_document(sim, req, resp, apply_config_doc, render_config);
    else if (strcmp(name, "state") == 0 || strcmp(name, "stats") == 0 ||
             strcmp(name, "reset") == 0 || strcmp(name, "seed") == 0)
        respond_error(resp, 405, "method not allowed");
    else
        respond_error(resp, 404, "no such admin endpoint");
}
