/* Credentials: the SDKs' chain of sources, the current credentials and their refresh requests. */
#include "clw/creds.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clw/buf.h"
#include "clw/log.h"
#include "clw/profile.h"
#include "clw/sign.h"

#define STS_VERSION  "2018-08-13"
#define STS_DURATION 7200
/* Largest web-identity token file read. */
#define TOKEN_FILE_MAX 65536
/* Refresh five minutes before the expiry at the latest. */
#define REFRESH_MARGIN_MS ((int64_t)5 * 60 * 1000)

struct clw_creds {
    enum clw_creds_source source;
    /* the profile file */
    char *profile_path;
    char *profile_name;
    struct clw_profile profile;
    /* a CVM role */
    char *metadata_url; /* ends with '/' */
    char *role;         /* NULL while to be discovered */
    /* OIDC */
    char *sts_url;
    char *region;
    char *provider_id;
    char *token_file;
    char *role_arn;
    /* temporary credentials */
    struct clw_tmp_creds tmp;
    int have;
    int64_t obtained_ms;
    unsigned gen;
    char principal[300];
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_principal(struct clw_creds *c);

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int dup_into(char **slot, const char *s)
{
    *slot = strdup(s != NULL ? s : "");
    return *slot != NULL ? 0 : -1;
}

static int set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* Reads a whole file of at most max bytes. Returns 0 (*out malloc'd, NUL-terminated), 1 when it
 * does not exist, -1 with err. */
static int read_file(const char *path, size_t max, char **out, size_t *len, char *err,
                     size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(max + 1);
    size_t n = 0;
    int rc = -1;
    if (buf == NULL) {
        set_err(err, errlen, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t got = read(fd, buf + n, max + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            set_err(err, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > max) {
            set_err(err, errlen, "%s: larger than %zu bytes", path, max);
            goto out;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    rc = 0;
out:
    if (buf != NULL) {
        clw_sign_wipe(buf, max + 1);
        free(buf);
    }
    close(fd);
    return rc;
}

/* Reads the profile file into c->profile. Returns 1 when the profile is there, 0 when the file
 * or the section is not, -1 with err. */
static int load_profile(struct clw_creds *c, int required, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(c->profile_path, CLW_PROFILE_MAX_BYTES, &text, &len, err, errlen);
    if (rc == 1) {
        if (required)
            set_err(err, errlen, "credentials file %s does not exist", c->profile_path);
        return required ? -1 : 0;
    }
    if (rc < 0)
        return -1;
    struct stat st;
    if (stat(c->profile_path, &st) == 0 && (st.st_mode & 077) != 0)
        CLW_WARN("credentials file %s is readable by its group or others (chmod 600 it)",
                 c->profile_path);
    struct clw_profile fresh;
    char why[128];
    memset(&fresh, 0, sizeof(fresh));
    rc = clw_profile_parse(text, len, c->profile_name, &fresh, why, sizeof(why));
    clw_sign_wipe(text, len);
    free(text);
    if (rc < 0) {
        set_err(err, errlen, "credentials file %s: %s", c->profile_path, why);
        return -1;
    }
    if (rc == 0) {
        if (required)
            set_err(err, errlen, "credentials file %s has no profile [%s] (api.profile)",
                    c->profile_path, c->profile_name);
        return required ? -1 : 0;
    }
    if (!set(fresh.secret_id) || !set(fresh.secret_key)) {
        set_err(err, errlen, "credentials file %s: profile [%s] needs secret_id and secret_key",
                c->profile_path, c->profile_name);
        clw_profile_free(&fresh);
        return -1;
    }
    clw_profile_free(&c->profile);
    c->profile = fresh;
    return 1;
}

/* The profile file's path: TENCENTCLOUD_CREDENTIALS_FILE, else ~/.tencentcloud/credentials. */
static int profile_path(struct clw_creds *c, const struct clw_creds_env *env)
{
    if (set(env->credentials_file))
        return dup_into(&c->profile_path, env->credentials_file);
    if (!set(env->home))
        return 0;
    size_t len = strlen(env->home) + sizeof("/.tencentcloud/credentials");
    c->profile_path = malloc(len);
    if (c->profile_path == NULL)
        return -1;
    snprintf(c->profile_path, len, "%s/.tencentcloud/credentials", env->home);
    return 0;
}

static int with_slash(char **slot, const char *url)
{
    size_t len = strlen(url);
    *slot = malloc(len + 2);
    if (*slot == NULL)
        return -1;
    snprintf(*slot, len + 2, "%s%s", url, len > 0 && url[len - 1] == '/' ? "" : "/");
    return 0;
}

static int oidc_env(struct clw_creds *c, const struct clw_creds_env *env, char *err, size_t errlen)
{
    const struct {
        const char *value;
        const char *name;
        char **slot;
    } vars[] = {
        {env->tke_region, "TKE_REGION", &c->region},
        {env->tke_provider_id, "TKE_PROVIDER_ID", &c->provider_id},
        {env->tke_token_file, "TKE_WEB_IDENTITY_TOKEN_FILE", &c->token_file},
        {env->tke_role_arn, "TKE_ROLE_ARN", &c->role_arn},
    };
    size_t n = 0;
    for (size_t i = 0; i < 4; i++)
        n += (size_t)set(vars[i].value);
    if (n == 0)
        return 0;
    for (size_t i = 0; i < 4; i++) {
        if (!set(vars[i].value)) {
            set_err(err, errlen,
                    "OIDC credentials need TKE_REGION, TKE_PROVIDER_ID, "
                    "TKE_WEB_IDENTITY_TOKEN_FILE and TKE_ROLE_ARN; %s is not set",
                    vars[i].name);
            return -1;
        }
        if (dup_into(vars[i].slot, vars[i].value) != 0) {
            set_err(err, errlen, "out of memory");
            return -1;
        }
    }
    return 1;
}

struct clw_creds *clw_creds_new(const struct clw_config *cfg, const struct clw_creds_env *env,
                                char *err, size_t errlen)
{
    struct clw_creds *c = calloc(1, sizeof(*c));
    if (c == NULL || dup_into(&c->profile_name, cfg->api_profile) != 0 ||
        with_slash(&c->metadata_url, cfg->api_metadata_endpoint) != 0 ||
        dup_into(&c->sts_url, cfg->api_sts_endpoint) != 0 || profile_path(c, env) != 0) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    /* (1) explicit keys: both or neither */
    int id = set(cfg->api_secret_id);
    int key = set(cfg->api_secret_key);
    if (id && key) {
        c->source = CLW_CREDS_STATIC;
        return c;
    }
    if (id != key) {
        set_err(err, errlen,
                "%s is set but %s is not (keys, their _file keys or "
                "TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY)",
                id ? "api.secret_id" : "api.secret_key", id ? "api.secret_key" : "api.secret_id");
        goto fail;
    }
    /* (2) the profile file: an explicit file or profile name must exist */
    if (c->profile_path != NULL) {
        int required = set(env->credentials_file) || strcmp(cfg->api_profile, "default") != 0;
        int rc = load_profile(c, required, err, errlen);
        if (rc < 0)
            goto fail;
        if (rc > 0) {
            c->source = CLW_CREDS_PROFILE;
            c->gen = 1;
            return c;
        }
    } else if (strcmp(cfg->api_profile, "default") != 0) {
        set_err(err, errlen,
                "api.profile is %s but neither TENCENTCLOUD_CREDENTIALS_FILE nor "
                "HOME is set",
                cfg->api_profile);
        goto fail;
    }
    /* (3) a named CAM role */
    if (set(cfg->api_role_name)) {
        if (dup_into(&c->role, cfg->api_role_name) != 0) {
            set_err(err, errlen, "out of memory");
            goto fail;
        }
        c->source = CLW_CREDS_CVM_ROLE;
        set_principal(c);
        return c;
    }
    /* (4) OIDC on TKE */
    int rc = oidc_env(c, env, err, errlen);
    if (rc < 0)
        goto fail;
    c->source = rc > 0 ? CLW_CREDS_OIDC : CLW_CREDS_NONE;
    set_principal(c);
    return c;
fail:
    clw_creds_free(c);
    return NULL;
}

void clw_creds_free(struct clw_creds *c)
{
    if (c == NULL)
        return;
    clw_profile_free(&c->profile);
    clw_tmp_creds_free(&c->tmp);
    free(c->profile_path);
    free(c->profile_name);
    free(c->metadata_url);
    free(c->role);
    free(c->sts_url);
    free(c->region);
    free(c->provider_id);
    free(c->token_file);
    free(c->role_arn);
    free(c);
}

enum clw_creds_source clw_creds_source(const struct clw_creds *c)
{
    return c->source;
}

int clw_creds_temporary(const struct clw_creds *c)
{
    return c->source == CLW_CREDS_CVM_ROLE || c->source == CLW_CREDS_OIDC;
}

void clw_creds_describe(const struct clw_creds *c, char *out, size_t len)
{
    switch (c->source) {
    case CLW_CREDS_STATIC:
        snprintf(out, len, "keys (api.secret_id, api.secret_key)");
        break;
    case CLW_CREDS_PROFILE:
        snprintf(out, len, "profile [%s] of %s", c->profile_name, c->profile_path);
        break;
    case CLW_CREDS_CVM_ROLE:
        if (c->role != NULL)
            snprintf(out, len, "CVM role %s (metadata service %s)", c->role, c->metadata_url);
        else
            snprintf(out, len, "the CVM role the metadata service lists (%s)", c->metadata_url);
        break;
    case CLW_CREDS_OIDC:
        snprintf(out, len, "OIDC role %s (STS %s, region %s, token file %s)", c->role_arn,
                 c->sts_url, c->region, c->token_file);
        break;
    case CLW_CREDS_NONE:
        snprintf(out, len, "none");
        break;
    }
}

const char *clw_creds_principal(const struct clw_creds *c, const struct clw_config *cfg)
{
    switch (c->source) {
    case CLW_CREDS_STATIC:
        return cfg->api_secret_id;
    case CLW_CREDS_PROFILE:
        return c->profile.secret_id;
    case CLW_CREDS_CVM_ROLE:
    case CLW_CREDS_OIDC:
        return c->principal;
    case CLW_CREDS_NONE:
        break;
    }
    return "";
}

/* Temporary SecretIds change at every refresh; the role does not. */
static void set_principal(struct clw_creds *c)
{
    if (c->source == CLW_CREDS_OIDC)
        snprintf(c->principal, sizeof(c->principal), "oidc/%s", c->role_arn);
    else
        snprintf(c->principal, sizeof(c->principal), "cvm-role/%s", c->role ? c->role : "");
}

int clw_creds_get(const struct clw_creds *c, const struct clw_config *cfg, int64_t now_ms,
                  struct clw_api_creds *out, unsigned *gen)
{
    switch (c->source) {
    case CLW_CREDS_STATIC:
        *out = (struct clw_api_creds){cfg->api_secret_id, cfg->api_secret_key, cfg->api_token};
        *gen = 1;
        return 0;
    case CLW_CREDS_PROFILE:
        *out = (struct clw_api_creds){c->profile.secret_id, c->profile.secret_key,
                                      c->profile.token != NULL ? c->profile.token : ""};
        *gen = c->gen;
        return 0;
    case CLW_CREDS_CVM_ROLE:
    case CLW_CREDS_OIDC:
        if (!c->have || now_ms >= c->tmp.expired_s * 1000)
            return -1;
        *out = (struct clw_api_creds){c->tmp.secret_id, c->tmp.secret_key, c->tmp.token};
        *gen = c->gen;
        return 0;
    case CLW_CREDS_NONE:
        break;
    }
    return -1;
}

int64_t clw_creds_expiry_ms(const struct clw_creds *c)
{
    return clw_creds_temporary(c) && c->have ? c->tmp.expired_s * 1000 : -1;
}

int64_t clw_creds_refresh_at_ms(const struct clw_creds *c)
{
    if (!clw_creds_temporary(c))
        return -1;
    if (!c->have)
        return 0;
    int64_t expiry = c->tmp.expired_s * 1000;
    int64_t life = expiry - c->obtained_ms;
    int64_t at = c->obtained_ms + life * 2 / 3;
    if (expiry - REFRESH_MARGIN_MS < at)
        at = expiry - REFRESH_MARGIN_MS;
    if (at < c->obtained_ms + life / 2)
        at = c->obtained_ms + life / 2;
    return at;
}

void clw_creds_discover(struct clw_creds *c)
{
    if (c->source == CLW_CREDS_NONE)
        c->source = CLW_CREDS_CVM_ROLE;
}

/* ---- refresh requests ---------------------------------------------------------------------- */

static void json_string(struct clw_buf *b, const char *s)
{
    clw_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            clw_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            clw_buf_printf(b, "\\u%04x", *p);
        else
            clw_buf_printf(b, "%c", *p);
    }
    clw_buf_puts(b, "\"");
}

/* The web-identity token: the file's content without trailing blanks and line ends. */
static char *read_token(const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, TOKEN_FILE_MAX, &text, &len, err, errlen);
    if (rc != 0) {
        if (rc == 1)
            set_err(err, errlen, "web identity token file %s does not exist", path);
        return NULL;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
                       text[len - 1] == '\t'))
        text[--len] = '\0';
    if (len == 0 || memchr(text, '\0', len) != NULL) {
        set_err(err, errlen, "web identity token file %s is empty or not text", path);
        free(text);
        return NULL;
    }
    return text;
}

static int sts_request(struct clw_creds *c, int64_t now_ms, struct clw_api_request *req, char *err,
                       size_t errlen)
{
    char *token = read_token(c->token_file, err, errlen);
    if (token == NULL)
        return -1;
    char session[64];
    snprintf(session, sizeof(session), "classiclink-worker-%" PRId64, now_ms / 1000);
    struct clw_buf b = {0};
    clw_buf_puts(&b, "{\"ProviderId\":");
    json_string(&b, c->provider_id);
    clw_buf_puts(&b, ",\"WebIdentityToken\":");
    json_string(&b, token);
    clw_buf_puts(&b, ",\"RoleArn\":");
    json_string(&b, c->role_arn);
    clw_buf_puts(&b, ",\"RoleSessionName\":");
    json_string(&b, session);
    clw_buf_printf(&b, ",\"DurationSeconds\":%d}", STS_DURATION);
    clw_sign_wipe(token, strlen(token));
    free(token);
    req->body = clw_buf_take(&b, NULL);
    req->url = strdup(c->sts_url);
    req->headers = calloc(7, sizeof(*req->headers));
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRId64, now_ms / 1000);
    size_t n = 0;
    if (req->body == NULL || req->url == NULL || req->headers == NULL ||
        clw_api_request_header(req, &n, "Content-Type", "application/json") != 0 ||
        clw_api_request_header(req, &n, "X-TC-Action", "AssumeRoleWithWebIdentity") != 0 ||
        clw_api_request_header(req, &n, "X-TC-Version", STS_VERSION) != 0 ||
        clw_api_request_header(req, &n, "X-TC-Region", c->region) != 0 ||
        clw_api_request_header(req, &n, "X-TC-Timestamp", ts) != 0 ||
        clw_api_request_header(req, &n, "Authorization", "SKIP") != 0) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int clw_creds_request(struct clw_creds *c, int64_t now_ms, struct clw_api_request *req, char *err,
                      size_t errlen)
{
    memset(req, 0, sizeof(*req));
    int rc = -1;
    if (c->source == CLW_CREDS_OIDC) {
        rc = sts_request(c, now_ms, req, err, errlen);
    } else if (c->source == CLW_CREDS_CVM_ROLE) {
        size_t len = strlen(c->metadata_url) + (c->role ? strlen(c->role) : 0) + 1;
        req->url = malloc(len);
        if (req->url != NULL) {
            snprintf(req->url, len, "%s%s", c->metadata_url, c->role ? c->role : "");
            rc = 0;
        } else {
            set_err(err, errlen, "out of memory");
        }
    } else {
        set_err(err, errlen, "these credentials are not refreshed");
    }
    if (rc != 0)
        clw_api_request_free(req);
    return rc;
}

/* A role name as the metadata service may list it: 1..128 of [A-Za-z0-9+=,.@_-]. */
static int valid_role(const char *s, size_t n)
{
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("+=,.@_-", ch) != NULL))
            return 0;
    }
    return 1;
}

static const char *transport_text(enum clw_transport t)
{
    switch (t) {
    case CLW_TRANSPORT_TIMEOUT:
        return "timed out";
    case CLW_TRANSPORT_CONNECT:
        return "cannot connect";
    case CLW_TRANSPORT_TLS:
        return "TLS verification failed";
    case CLW_TRANSPORT_TOO_LARGE:
        return "answer too large";
    case CLW_TRANSPORT_OK:
    case CLW_TRANSPORT_ERROR:
        break;
    }
    return "connection failed";
}

/* The first line of the role list. Returns 1 (role set), -1 with err. */
static int take_role(struct clw_creds *c, const char *body, size_t len, char *err, size_t errlen)
{
    size_t n = 0;
    while (n < len && body[n] != '\n' && body[n] != '\r')
        n++;
    while (n > 0 && (body[n - 1] == ' ' || body[n - 1] == '\t'))
        n--;
    if (!valid_role(body, n)) {
        set_err(err, errlen, "the metadata service's role list is not a role name");
        return -1;
    }
    c->role = strndup(body, n);
    if (c->role == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    set_principal(c);
    CLW_INFO("credentials: the metadata service lists the CAM role %s", c->role);
    return 1;
}

int clw_creds_answer(struct clw_creds *c, enum clw_transport transport, long status,
                     const char *body, size_t len, int64_t now_ms, char *err, size_t errlen)
{
    int sts = c->source == CLW_CREDS_OIDC;
    const char *who = sts ? "STS" : "the metadata service";
    if (transport != CLW_TRANSPORT_OK) {
        set_err(err, errlen, "%s: %s", who, transport_text(transport));
        return -1;
    }
    if (!sts && c->role == NULL) {
        if (status == 404) {
            set_err(err, errlen,
                    "the metadata service lists no CAM role (none is bound to "
                    "this instance)");
            return -1;
        }
        if (status != 200) {
            set_err(err, errlen, "the metadata service answered HTTP %ld", status);
            return -1;
        }
        return take_role(c, body != NULL ? body : "", len, err, errlen);
    }
    if (status != 200) {
        if (!sts && status == 404)
            set_err(err, errlen, "the metadata service knows no CAM role %s", c->role);
        else
            set_err(err, errlen, "%s answered HTTP %ld", who, status);
        return -1;
    }
    struct clw_tmp_creds fresh;
    char why[160];
    memset(&fresh, 0, sizeof(fresh));
    if (clw_answer_parse_tmp_creds(sts ? CLW_TMP_CREDS_STS : CLW_TMP_CREDS_METADATA, body, len,
                                   &fresh, why, sizeof(why)) != 0) {
        set_err(err, errlen, "%s: malformed credentials: %s", who, why);
        return -1;
    }
    if (fresh.expired_s * 1000 <= now_ms) {
        set_err(err, errlen, "%s: the credentials it gave have expired already (clock?)", who);
        clw_tmp_creds_free(&fresh);
        return -1;
    }
    clw_tmp_creds_free(&c->tmp);
    c->tmp = fresh;
    c->have = 1;
    c->obtained_ms = now_ms;
    c->gen++;
    return 0;
}

int clw_creds_reload(struct clw_creds *c, char *err, size_t errlen)
{
    if (c->source != CLW_CREDS_PROFILE)
        return 0;
    if (load_profile(c, 1, err, errlen) < 0)
        return -1;
    c->gen++;
    return 0;
}
