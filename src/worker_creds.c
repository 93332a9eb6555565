/* The credentials stage: the chain's source at start; temporary credentials fetched and refreshed
 * through the HTTP adapter like any call, never blocking the loop; calls signed with old
 * credentials signed again; an expiry that cannot be repaired is the guard's pause. */
#include "worker_creds.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/classify.h"
#include "clw/clock.h"
#include "clw/sign.h"
#include "clw/log.h"
#include "clw/worker.h"

/* Retries of a failed refresh: 1 s, doubling up to retry.max_backoff_ms. */
#define CREDS_RETRY_FIRST_MS 1000
/* How long the start-up discovery of a CVM role waits for the metadata service. */
#define DISCOVERY_TIMEOUT_MS 3000

static void creds_env(struct clw_creds_env *env)
{
    env->credentials_file = getenv("TENCENTCLOUD_CREDENTIALS_FILE");
    env->home = getenv("HOME");
    env->tke_region = getenv("TKE_REGION");
    env->tke_provider_id = getenv("TKE_PROVIDER_ID");
    env->tke_token_file = getenv("TKE_WEB_IDENTITY_TOKEN_FILE");
    env->tke_role_arn = getenv("TKE_ROLE_ARN");
}

static void format_wall(int64_t ms, char *out)
{
    clw_clock_rfc3339(ms, out);
}

/* ---- one request, waited for (start-up and --check-config only, never in the loop) -------- */

struct sync_answer {
    int done;
    enum clw_transport transport;
    long status;
    char *body;
    size_t len;
};

static void sync_done(void *opaque, const struct clw_http_response *resp, void *arg)
{
    (void)opaque;
    struct sync_answer *a = arg;
    a->done = 1;
    a->transport = resp->transport;
    a->status = resp->status;
    if (resp->body != NULL) {
        a->body = malloc(resp->body_len + 1);
        if (a->body != NULL) {
            memcpy(a->body, resp->body, resp->body_len);
            a->body[resp->body_len] = '\0';
            a->len = resp->body_len;
        }
    }
}

/* Runs the credential requests of c until new credentials are in place. Returns 0, -1 with
 * err. */
static int fetch_now(struct clw_http *http, struct clw_creds *c, char *err, size_t errlen)
{
    for (int step = 0; step < 3; step++) {
        struct clw_api_request req;
        if (clw_creds_request(c, clw_clock_wall_ms(), &req, err, errlen) != 0)
            return -1;
        struct sync_answer a = {0};
        int rc = clw_http_submit(http, req.url, req.body, (const char *const *)req.headers, &a);
        clw_api_request_free(&req);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start a credentials request (out of memory)");
            return -1;
        }
        int64_t deadline = clw_clock_mono_ms() + DISCOVERY_TIMEOUT_MS + 1000;
        while (!a.done && clw_clock_mono_ms() < deadline) {
            clw_http_wait(http, NULL, 0, 100);
            clw_http_run(http, sync_done, &a);
        }
        if (!a.done) {
            clw_http_cancel(http, &a);
            a.transport = CLW_TRANSPORT_TIMEOUT;
        }
        rc = clw_creds_answer(c, a.transport, a.status, a.body, a.len, clw_clock_wall_ms(), err,
                              errlen);
        if (a.body != NULL) {
            clw_sign_wipe(a.body, a.len);
            free(a.body);
        }
        if (rc <= 0)
            return rc;
    }
    snprintf(err, errlen, "the metadata service did not settle on a role");
    return -1;
}

static struct clw_http *short_http(char *err, size_t errlen)
{
    struct clw_http_opts o = {.timeout_ms = DISCOVERY_TIMEOUT_MS,
                              .connect_timeout_ms = DISCOVERY_TIMEOUT_MS,
                              .max_body = (size_t)64 * 1024,
                              .max_connections = 2};
    return clw_http_new(&o, err, errlen);
}

/* The chain's source; nothing configured: the role the metadata service lists, asked now. */
static struct clw_creds *resolve(const struct clw_config *cfg, char *err, size_t errlen)
{
    struct clw_creds_env env;
    creds_env(&env);
    struct clw_creds *c = clw_creds_new(cfg, &env, err, errlen);
    if (c == NULL || clw_creds_source(c) != CLW_CREDS_NONE)
        return c;
    clw_creds_discover(c);
    char why[256];
    struct clw_http *http = short_http(why, sizeof(why));
    int rc = http != NULL ? fetch_now(http, c, why, sizeof(why)) : -1;
    clw_http_free(http);
    if (rc != 0) {
        snprintf(err, errlen,
                 "no credentials: set api.secret_id and api.secret_key (or their _file keys, or "
                 "TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY), a profile file, "
                 "api.role_name, or the TKE_* variables for OIDC (and %s)",
                 why);
        clw_creds_free(c);
        return NULL;
    }
    return c;
}

int clw_worker_describe_credentials(const struct clw_config *cfg, char *out, size_t len, char *err,
                                    size_t errlen)
{
    struct clw_creds *c = resolve(cfg, err, errlen);
    if (c == NULL)
        return -1;
    char desc[512];
    clw_creds_describe(c, desc, sizeof(desc));
    int rc = 0;
    if (clw_creds_temporary(c) && clw_creds_expiry_ms(c) < 0) {
        struct clw_http *http = short_http(err, errlen);
        rc = http != NULL ? fetch_now(http, c, err, errlen) : -1;
        clw_http_free(http);
    }
    if (rc == 0 && clw_creds_temporary(c)) {
        char until[CLW_RFC3339_LEN];
        format_wall(clw_creds_expiry_ms(c), until);
        snprintf(out, len, "%s; temporary, these expire at %s", desc, until);
    } else if (rc == 0) {
        snprintf(out, len, "%s", desc);
    }
    clw_creds_free(c);
    return rc;
}

/* ---- in the loop ----------------------------------------------------------------------------- */

int clw_creds_stage_setup(struct credstage *c, const struct clw_config *cfg, struct clw_http *http,
                          struct guard *guard, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->cfg = cfg;
    c->http = http;
    c->guard = guard;
    c->creds = resolve(cfg, err, errlen);
    if (c->creds == NULL)
        return -1;
    char desc[512];
    clw_creds_describe(c->creds, desc, sizeof(desc));
    CLW_INFO("credentials: %s", desc);
    return 0;
}

void clw_creds_stage_fini(struct credstage *c)
{
    clw_creds_free(c->creds);
    c->creds = NULL;
}

int clw_creds_stage_ready(const struct credstage *c, int64_t now_wall)
{
    struct clw_api_creds cur;
    unsigned gen;
    return !clw_guard_creds_blocked(c->guard) && !c->forced &&
           clw_creds_get(c->creds, c->cfg, now_wall, &cur, &gen) == 0;
}

int clw_creds_stage_owns(const struct credstage *c, const void *opaque)
{
    return opaque == &c->in_flight;
}

void clw_creds_stage_tick(struct credstage *c, int64_t now)
{
    if (!clw_creds_temporary(c->creds) || c->in_flight)
        return;
    int64_t wall = clw_clock_wall_ms();
    struct clw_api_creds cur;
    unsigned gen;
    int have = clw_creds_get(c->creds, c->cfg, wall, &cur, &gen) == 0;
    if (!have && clw_creds_expiry_ms(c->creds) >= 0 && !clw_guard_creds_blocked(c->guard))
        clw_guard_creds_fault(c->guard, 1, c->why[0] ? c->why : "expired before a refresh", now);
    int due = c->forced || clw_creds_refresh_at_ms(c->creds) <= wall;
    if (!due || now < c->retry_mono)
        return;
    struct clw_api_request req;
    char err[256];
    if (clw_creds_request(c->creds, wall, &req, err, sizeof(err)) == 0 &&
        clw_http_submit(c->http, req.url, req.body, (const char *const *)req.headers,
                        &c->in_flight) == 0) {
        c->in_flight = 1;
    } else {
        snprintf(c->why, sizeof(c->why), "%s", err);
        c->retry_mono = now + CREDS_RETRY_FIRST_MS;
        CLW_WARN("cannot refresh credentials: %s", err);
    }
    clw_api_request_free(&req);
}

int64_t clw_creds_stage_wait_ms(const struct credstage *c, int64_t now, int64_t max_ms)
{
    if (!clw_creds_temporary(c->creds) || c->in_flight)
        return max_ms;
    int64_t wait = clw_creds_refresh_at_ms(c->creds) - clw_clock_wall_ms();
    if (c->forced)
        wait = 0;
    if (c->retry_mono - now > wait)
        wait = c->retry_mono - now;
    /* Expiry must be noticed even while nothing else happens. */
    int64_t expiry = clw_creds_expiry_ms(c->creds);
    if (expiry >= 0 && !clw_guard_creds_blocked(c->guard) && expiry - clw_clock_wall_ms() < wait)
        wait = expiry - clw_clock_wall_ms();
    if (wait < 0)
        wait = 0;
    return wait < max_ms ? wait : max_ms;
}

void clw_creds_stage_done(struct credstage *c, const struct clw_http_response *resp)
{
    int64_t now = clw_clock_mono_ms();
    int64_t wall = clw_clock_wall_ms();
    char err[256];
    c->in_flight = 0;
    int rc = clw_creds_answer(c->creds, resp->transport, resp->status, resp->body, resp->body_len,
                              wall, err, sizeof(err));
    if (rc == 1) {
        c->retry_mono = now; /* the role is known now: its credentials next */
        return;
    }
    if (rc == 0) {
        char until[CLW_RFC3339_LEN];
        format_wall(clw_creds_expiry_ms(c->creds), until);
        CLW_INFO("credentials refreshed; they expire at %s", until);
        c->failures = 0;
        c->forced = 0;
        c->retry_mono = 0;
        c->why[0] = '\0';
        clw_guard_creds_fault(c->guard, 0, NULL, now);
        return;
    }
    c->failures++;
    int64_t delay = CREDS_RETRY_FIRST_MS;
    for (int i = 1; i < c->failures && delay < c->cfg->retry_max_backoff_ms; i++)
        delay *= 2;
    if (delay > c->cfg->retry_max_backoff_ms)
        delay = c->cfg->retry_max_backoff_ms;
    c->retry_mono = now + delay;
    snprintf(c->why, sizeof(c->why), "%s", err);
    struct clw_api_creds cur;
    unsigned gen;
    if (clw_creds_get(c->creds, c->cfg, wall, &cur, &gen) == 0 && !c->forced) {
        char until[CLW_RFC3339_LEN];
        format_wall(clw_creds_expiry_ms(c->creds), until);
        CLW_WARN("cannot refresh credentials (%s); keeping the current ones until %s, retrying "
                 "in %" PRId64 " ms",
                 err, until, delay);
    } else {
        clw_guard_creds_fault(c->guard, 1, err, now);
        CLW_WARN("cannot get credentials (%s); retrying in %" PRId64 " ms", err, delay);
    }
}

int clw_creds_stage_refused(struct credstage *c, unsigned call_gen, const struct clw_answer *ans)
{
    if (!clw_classify_credentials_refused(ans)) {
        c->refusals = 0;
        return 0;
    }
    struct clw_api_creds cur;
    unsigned gen;
    if (clw_creds_get(c->creds, c->cfg, clw_clock_wall_ms(), &cur, &gen) == 0 && gen != call_gen) {
        CLW_INFO("a call signed with earlier credentials was refused; signing it again");
        return 1;
    }
    if (!clw_creds_temporary(c->creds))
        return 0;
    if (c->forced)
        return 1; /* a refresh is on its way: the call waits for it */
    if (c->refusals > 0)
        return 0; /* fresh credentials refused as well: a real worker fault */
    CLW_WARN("the API refused the current temporary credentials; refreshing them now");
    c->refusals++;
    c->forced = 1;
    c->retry_mono = 0;
    return 1;
}

void clw_creds_stage_reload(struct credstage *c)
{
    char err[256];
    if (clw_creds_reload(c->creds, err, sizeof(err)) != 0)
        CLW_ERROR("SIGHUP: %s; keeping the previous credentials", err);
}
