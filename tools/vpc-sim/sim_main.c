/* vpc-sim: command line, start-up and signal handling of the VPC API simulator. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "sim.h"
#include "sim_http.h"
#include "sim_sign.h"

#ifndef CLW_SIM_VERSION
#define CLW_SIM_VERSION "dev"
#endif

#define EXIT_USAGE   1
#define EXIT_RUNTIME 2

static const char usage_text[] =
    "Usage: vpc-sim --credentials FILE [options]\n"
    "\n"
    "Simulates the Tencent Cloud VPC API for tests and local development, v2 (/v2/index.php,\n"
    "HmacSHA1/HmacSHA256) and API 3.0 (POST /, TC3-HMAC-SHA256): signature checks, a small\n"
    "VPC world changed by calls, a quota, fault injection, admin endpoints.\n"
    "\n"
    "Serving:\n"
    "  --listen HOST:PORT        address to listen on (default 127.0.0.1:8480); port 0 picks\n"
    "                            one. Prints 'listening on HOST:PORT' on stdout when ready\n"
    "  --port-file FILE          also write the bound port to FILE\n"
    "  --tls-cert FILE           PEM certificate: serve HTTPS (needs --tls-key)\n"
    "  --tls-key FILE            PEM private key for --tls-cert\n"
    "  --threads N               event-loop threads (default 2)\n"
    "  --connection-limit N      most open connections (default 10000)\n"
    "  --no-admin                do not serve the /_sim/ admin endpoints\n"
    "\n"
    "Authentication:\n"
    "  --credentials FILE        lines 'SECRET_ID SECRET_KEY [TOKEN]' ('#' comments); required\n"
    "  --window-s S              replay window: Timestamp skew allowed and how long a Nonce\n"
    "                            is remembered (default 300)\n"
    "  --clock-skew-s S          add S seconds (may be negative) to the simulator's clock\n"
    "  --sign-host NAME          verify signatures against NAME instead of the Host header\n"
    "  --quota N                 calls per second allowed per (account, action), over a\n"
    "                            sliding second; more get 4400 / RequestLimitExceeded\n"
    "                            (default 0: no quota). An account is a SecretId, or the\n"
    "                            role temporary credentials were issued for\n"
    "  --quota-per-region        the quota is per (account, region, action) instead\n"
    "  --quota-reserve N         a phantom client (a stranger on the account) offers N calls\n"
    "                            per second under each quota, evenly spread (default 0;\n"
    "                            below --quota)\n"
    "\n"
    "Temporary credentials (CVM metadata service, STS AssumeRoleWithWebIdentity):\n"
    "  --cvm-role NAME           the CAM role the metadata service answers credentials for\n"
    "                            (default: none bound, 404)\n"
    "  --temp-credential-life-s S  life of issued temporary credentials (default 7200)\n"
    "  --expired-credential-code CODE  how calls with an expired one are refused:\n"
    "                            AuthFailure.TokenFailure (4105, default) or\n"
    "                            AuthFailure.SecretIdNotFound (4104)\n"
    "  --oidc-token-file FILE    STS accepts a WebIdentityToken equal to FILE's content\n"
    "                            (re-read on every call)\n"
    "  --oidc-provider-id ID     the ProviderId STS accepts\n"
    "  --oidc-role-arn ARN       the RoleArn STS accepts\n"
    "  --sts-provider-error CODE  Code for another ProviderId (default\n"
    "                            InvalidParameter.ParamError)\n"
    "  --sts-role-error CODE     Code for another RoleArn (default InternalError.GetRoleError)\n"
    "\n"
    "State:\n"
    "  --seed FILE               JSON seed: regions, VPCs, instances, links (see README)\n"
    "  --gen-vpcs M              add vpc-0 .. vpc-(M-1)\n"
    "  --gen-instances N         add classic instances ins-0 .. ins-(N-1)\n"
    "  --gen-region R            region of generated resources (default ap-guangzhou)\n"
    "  --gen-linked K            link the first K generated instances to vpc-0\n"
    "  --link-limit N            classic links allowed per region (default unlimited)\n"
    "  --same-vpc-attach CHOICE  attaching an instance to the VPC it is linked to:\n"
    "                            'error' (InstanceAlreadyLinked, default) or 'success'\n"
    "  --detach-unlinked CHOICE  detaching an instance not linked to that VPC:\n"
    "                            'error' (InvalidInstance.NotFound, default) or 'success'\n"
    "  --business-code N         numeric code sent with business errors (default 4000)\n"
    "  --max-instances N         most instanceIds.N in one call (default 100)\n"
    "  --task-delay-ms MS        how long tasks stay running (default 1000)\n"
    "\n"
    "Faults:\n"
    "  --latency-ms MS           delay before every API answer (default 0)\n"
    "  --latency-jitter-ms MS    extra random delay (default 0)\n"
    "  --latency-dist DIST       'uniform' (0..jitter, default) or 'exponential' (mean jitter)\n"
    "  --error-rate P            probability in [0,1] that a call gets a random fault\n"
    "  --error-kinds LIST        comma-separated faults to draw from (default code:4400,\n"
    "                            code:5100,code:6000,code:6200,http:500,http:502,http:503,drop);\n"
    "                            'hang' may be added\n"
    "  --apply-rate P            probability that a random fault is 'apply then fail'\n"
    "  --hang-ms MS              how long a 'hang' holds the connection (default 60000)\n"
    "  --retry-after S           Retry-After seconds on 4400 / HTTP 429 / 503 faults and on\n"
    "                            calls over the quota\n"
    "  --faults FILE             JSON fault document (same format as POST /_sim/faults)\n"
    "  --rng-seed N              seed of the fault/latency generator (default: time-based)\n"
    "\n"
    "Observability:\n"
    "  --call-log FILE           append one JSON line per API call (never secrets)\n"
    "  --help                    this text\n"
    "  --version                 print the version\n"
    "\n"
    "Admin endpoints: GET /_sim/state, /_sim/stats, /_sim/faults, /_sim/config;\n"
    "POST /_sim/reset, /_sim/seed, /_sim/faults, /_sim/config. See README.md.\n"
    "Also served: GET /latest/meta-data/cam/security-credentials/[ROLE] (the CVM metadata\n"
    "service) and POST / with X-TC-Action: AssumeRoleWithWebIdentity (STS).\n"
    "Exit status: 0 after SIGINT/SIGTERM, 1 usage or configuration error, 2 runtime error.\n";

enum {
    OPT_LISTEN = 256,
    OPT_PORT_FILE,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_THREADS,
    OPT_CONN_LIMIT,
    OPT_NO_ADMIN,
    OPT_CREDENTIALS,
    OPT_WINDOW,
    OPT_SKEW,
    OPT_SIGN_HOST,
    OPT_QUOTA,
    OPT_QUOTA_RESERVE,
    OPT_QUOTA_PER_REGION,
    OPT_CVM_ROLE,
    OPT_TEMP_LIFE,
    OPT_EXPIRED_CODE,
    OPT_OIDC_TOKEN_FILE,
    OPT_OIDC_PROVIDER,
    OPT_OIDC_ROLE_ARN,
    OPT_STS_PROVIDER_ERROR,
    OPT_STS_ROLE_ERROR,
    OPT_SEED,
    OPT_GEN_VPCS,
    OPT_GEN_INSTANCES,
    OPT_GEN_REGION,
    OPT_GEN_LINKED,
    OPT_LINK_LIMIT,
    OPT_SAME_VPC,
    OPT_DETACH_UNLINKED,
    OPT_BUSINESS_CODE,
    OPT_MAX_INSTANCES,
    OPT_TASK_DELAY,
    OPT_LATENCY,
    OPT_JITTER,
    OPT_DIST,
    OPT_ERROR_RATE,
    OPT_ERROR_KINDS,
    OPT_APPLY_RATE,
    OPT_HANG,
    OPT_RETRY_AFTER,
    OPT_FAULTS,
    OPT_RNG_SEED,
    OPT_CALL_LOG,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"connection-limit", required_argument, NULL, OPT_CONN_LIMIT},
    {"no-admin", no_argument, NULL, OPT_NO_ADMIN},
    {"credentials", required_argument, NULL, OPT_CREDENTIALS},
    {"window-s", required_argument, NULL, OPT_WINDOW},
    {"clock-skew-s", required_argument, NULL, OPT_SKEW},
    {"sign-host", required_argument, NULL, OPT_SIGN_HOST},
    {"quota", required_argument, NULL, OPT_QUOTA},
    {"quota-reserve", required_argument, NULL, OPT_QUOTA_RESERVE},
    {"quota-per-region", no_argument, NULL, OPT_QUOTA_PER_REGION},
    {"cvm-role", required_argument, NULL, OPT_CVM_ROLE},
    {"temp-credential-life-s", required_argument, NULL, OPT_TEMP_LIFE},
    {"expired-credential-code", required_argument, NULL, OPT_EXPIRED_CODE},
    {"oidc-token-file", required_argument, NULL, OPT_OIDC_TOKEN_FILE},
    {"oidc-provider-id", required_argument, NULL, OPT_OIDC_PROVIDER},
    {"oidc-role-arn", required_argument, NULL, OPT_OIDC_ROLE_ARN},
    {"sts-provider-error", required_argument, NULL, OPT_STS_PROVIDER_ERROR},
    {"sts-role-error", required_argument, NULL, OPT_STS_ROLE_ERROR},
    {"seed", required_argument, NULL, OPT_SEED},
    {"gen-vpcs", required_argument, NULL, OPT_GEN_VPCS},
    {"gen-instances", required_argument, NULL, OPT_GEN_INSTANCES},
    {"gen-region", required_argument, NULL, OPT_GEN_REGION},
    {"gen-linked", required_argument, NULL, OPT_GEN_LINKED},
    {"link-limit", required_argument, NULL, OPT_LINK_LIMIT},
    {"same-vpc-attach", required_argument, NULL, OPT_SAME_VPC},
    {"detach-unlinked", required_argument, NULL, OPT_DETACH_UNLINKED},
    {"business-code", required_argument, NULL, OPT_BUSINESS_CODE},
    {"max-instances", required_argument, NULL, OPT_MAX_INSTANCES},
    {"task-delay-ms", required_argument, NULL, OPT_TASK_DELAY},
    {"latency-ms", required_argument, NULL, OPT_LATENCY},
    {"latency-jitter-ms", required_argument, NULL, OPT_JITTER},
    {"latency-dist", required_argument, NULL, OPT_DIST},
    {"error-rate", required_argument, NULL, OPT_ERROR_RATE},
    {"error-kinds", required_argument, NULL, OPT_ERROR_KINDS},
    {"apply-rate", required_argument, NULL, OPT_APPLY_RATE},
    {"hang-ms", required_argument, NULL, OPT_HANG},
    {"retry-after", required_argument, NULL, OPT_RETRY_AFTER},
    {"faults", required_argument, NULL, OPT_FAULTS},
    {"rng-seed", required_argument, NULL, OPT_RNG_SEED},
    {"call-log", required_argument, NULL, OPT_CALL_LOG},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Everything the command line says, before it is turned into options for the simulator. */
struct cli {
    const char *listen;
    const char *port_file;
    const char *tls_cert;
    const char *tls_key;
    const char *seed_path;
    const char *faults_path;
    unsigned threads;
    unsigned connection_limit;
    bool rng_seed_set;
    cJSON *seed_overrides;  /* members set on the seed document */
    cJSON *generate;        /* the seed's "generate" member */
    cJSON *fault_overrides; /* members set on the fault document */
    struct clw_sim_options opts;
};

static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad_usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "vpc-sim: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'vpc-sim --help'.\n");
    return -1;
}

static int parse_int(const char *arg, const char *name, long long min, long long max,
                     long long *out)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "vpc-sim: --%s: expected a whole number in [%lld, %lld], got '%s'\n", name,
                min, max, arg);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_probability(const char *arg, const char *name, double *out)
{
    char *end = NULL;
    double v = strtod(arg, &end);

    if (end == arg || *end != '\0' || !(v >= 0.0 && v <= 1.0)) {
        fprintf(stderr, "vpc-sim: --%s: expected a number in [0, 1], got '%s'\n", name, arg);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_choice(const char *arg, const char *name, bool *success)
{
    if (strcmp(arg, "success") == 0) {
        *success = true;
    } else if (strcmp(arg, "error") == 0) {
        *success = false;
    } else {
        fprintf(stderr, "vpc-sim: --%s: expected 'success' or 'error', got '%s'\n", name, arg);
        return -1;
    }
    return 0;
}

/* Copies arg into out (outsz bytes) when it fits and ok (if any) accepts it. */
static int parse_text(const char *arg, const char *name, bool (*ok)(const char *), char *out,
                      size_t outsz)
{
    if (strlen(arg) >= outsz || (ok != NULL && !ok(arg)) || arg[0] == '\0') {
        fprintf(stderr, "vpc-sim: --%s: not a valid value: '%.64s'\n", name, arg);
        return -1;
    }
    snprintf(out, outsz, "%s", arg);
    return 0;
}

/* The temporary-credential options; -1 on a bad value. */
static int parse_credential_option(struct clw_sim_settings *set, int opt, const char *flag,
                                   const char *arg)
{
    long long v = 0;

    switch (opt) {
    case OPT_CVM_ROLE:
        return parse_text(arg, flag, clw_sim_role_name_ok, set->cvm_role, sizeof(set->cvm_role));
    case OPT_TEMP_LIFE:
        if (parse_int(arg, flag, 1, CLW_SIM_LIFE_MAX_S, &v) != 0)
            return -1;
        set->temp_life_s = v;
        return 0;
    case OPT_EXPIRED_CODE:
        if (clw_sim_expired_code_parse(arg, &set->expired_code) != 0) {
            fprintf(stderr,
                    "vpc-sim: --%s: expected AuthFailure.TokenFailure or "
                    "AuthFailure.SecretIdNotFound, got '%.64s'\n",
                    flag, arg);
            return -1;
        }
        return 0;
    case OPT_OIDC_TOKEN_FILE:
        return parse_text(arg, flag, NULL, set->oidc_token_file, sizeof(set->oidc_token_file));
    case OPT_OIDC_PROVIDER:
        return parse_text(arg, flag, clw_sim_oidc_value_ok, set->oidc_provider_id,
                          sizeof(set->oidc_provider_id));
    case OPT_OIDC_ROLE_ARN:
        return parse_text(arg, flag, clw_sim_oidc_value_ok, set->oidc_role_arn,
                          sizeof(set->oidc_role_arn));
    case OPT_STS_PROVIDER_ERROR:
        return parse_text(arg, flag, clw_sim_error_code_ok, set->sts_provider_error,
                          sizeof(set->sts_provider_error));
    default: /* OPT_STS_ROLE_ERROR */
        return parse_text(arg, flag, clw_sim_error_code_ok, set->sts_role_error,
                          sizeof(set->sts_role_error));
    }
}

/* "a,b,c" -> ["a","b","c"]; each must be a fault spelling. */
static cJSON *parse_kinds(const char *arg)
{
    cJSON *arr = cJSON_CreateArray();
    char *copy = strdup(arg);
    char *save = NULL;
    struct clw_sim_fault fault;

    if (arr == NULL || copy == NULL)
        goto fail;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (clw_sim_fault_parse(tok, &fault) != 0 || fault.kind == CLW_SIM_FAULT_TASK_FAIL ||
            fault.kind == CLW_SIM_FAULT_BUSINESS) {
            fprintf(stderr, "vpc-sim: --error-kinds: bad fault '%s'\n", tok);
            goto fail;
        }
        cJSON_AddItemToArray(arr, cJSON_CreateString(tok));
    }
    free(copy);
    return arr;

fail:
    free(copy);
    cJSON_Delete(arr);
    return NULL;
}

/* The seed or fault document member an option sets. */
static const char *override_key(int opt)
{
    switch (opt) {
    case OPT_GEN_VPCS:
        return "vpcs";
    case OPT_GEN_INSTANCES:
        return "instances";
    case OPT_GEN_LINKED:
        return "linked";
    case OPT_LATENCY:
        return "latencyMs";
    case OPT_JITTER:
        return "latencyJitterMs";
    case OPT_HANG:
        return "hangMs";
    case OPT_ERROR_RATE:
        return "rate";
    case OPT_APPLY_RATE:
        return "applyRate";
    case OPT_RETRY_AFTER:
        return "retryAfter";
    default:
        return "?";
    }
}

/* Sets obj[key] = item, replacing an earlier value: the last occurrence of a flag wins. */
static void set_member(cJSON *obj, const char *key, cJSON *item)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddItemToObject(obj, key, item);
}

/* One option (flag is its long name); returns 0, 1 for "done, exit 0" (help, version), or
 * -1. */
static int parse_option(struct cli *cli, int opt, const char *flag, const char *arg)
{
    struct clw_sim_settings *set = &cli->opts.settings;
    long long v = 0;
    double p = 0;
    cJSON *kinds;

    switch (opt) {
    case OPT_LISTEN:
        cli->listen = arg;
        return 0;
    case OPT_PORT_FILE:
        cli->port_file = arg;
        return 0;
    case OPT_TLS_CERT:
        cli->tls_cert = arg;
        return 0;
    case OPT_TLS_KEY:
        cli->tls_key = arg;
        return 0;
    case OPT_THREADS:
        if (parse_int(arg, flag, 1, 64, &v) != 0)
            return -1;
        cli->threads = (unsigned)v;
        return 0;
    case OPT_CONN_LIMIT:
        if (parse_int(arg, flag, 1, 1000000, &v) != 0)
            return -1;
        cli->connection_limit = (unsigned)v;
        return 0;
    case OPT_NO_ADMIN:
        cli->opts.admin = false;
        return 0;
    case OPT_CREDENTIALS:
        cli->opts.credentials_path = arg;
        return 0;
    case OPT_WINDOW:
        if (parse_int(arg, flag, 1, 86400LL * 365, &v) != 0)
            return -1;
        set->window_s = v;
        return 0;
    case OPT_SKEW:
        if (parse_int(arg, flag, -86400LL * 365, 86400LL * 365, &v) != 0)
            return -1;
        set->clock_skew_s = v;
        return 0;
    case OPT_SIGN_HOST:
        cli->opts.sign_host = arg;
        return 0;
    case OPT_QUOTA:
        if (parse_int(arg, flag, 0, CLW_SIM_QUOTA_MAX, &v) != 0)
            return -1;
        set->quota = (uint32_t)v;
        return 0;
    case OPT_QUOTA_RESERVE:
        if (parse_int(arg, flag, 0, CLW_SIM_QUOTA_MAX, &v) != 0)
            return -1;
        set->quota_reserve = (uint32_t)v;
        return 0;
    case OPT_QUOTA_PER_REGION:
        set->quota_per_region = true;
        return 0;
    case OPT_CVM_ROLE:
    case OPT_TEMP_LIFE:
    case OPT_EXPIRED_CODE:
    case OPT_OIDC_TOKEN_FILE:
    case OPT_OIDC_PROVIDER:
    case OPT_OIDC_ROLE_ARN:
    case OPT_STS_PROVIDER_ERROR:
    case OPT_STS_ROLE_ERROR:
        return parse_credential_option(set, opt, flag, arg);
    case OPT_SEED:
        cli->seed_path = arg;
        return 0;
    case OPT_GEN_VPCS:
    case OPT_GEN_INSTANCES:
    case OPT_GEN_LINKED:
        if (parse_int(arg, flag, 0, 10000000, &v) != 0)
            return -1;
        set_member(cli->generate, override_key(opt), cJSON_CreateNumber((double)v));
        return 0;
    case OPT_GEN_REGION:
        set_member(cli->generate, "region", cJSON_CreateString(arg));
        return 0;
    case OPT_LINK_LIMIT:
        if (parse_int(arg, flag, 0, 100000000, &v) != 0)
            return -1;
        set_member(cli->seed_overrides, "defaultLinkLimit", cJSON_CreateNumber((double)v));
        return 0;
    case OPT_SAME_VPC:
        return parse_choice(arg, flag, &set->rules.same_vpc_attach_ok);
    case OPT_DETACH_UNLINKED:
        return parse_choice(arg, flag, &set->rules.detach_unlinked_ok);
    case OPT_BUSINESS_CODE:
        if (parse_int(arg, flag, 1, 999999, &v) != 0)
            return -1;
        set->rules.business_code = (int)v;
        return 0;
    case OPT_MAX_INSTANCES:
        if (parse_int(arg, flag, 1, 1000, &v) != 0)
            return -1;
        set->max_instances = (size_t)v;
        return 0;
    case OPT_TASK_DELAY:
        if (parse_int(arg, flag, 0, 86400000, &v) != 0)
            return -1;
        set->rules.task_delay_ms = v;
        return 0;
    case OPT_LATENCY:
    case OPT_JITTER:
    case OPT_HANG:
        if (parse_int(arg, flag, 0, 3600000, &v) != 0)
            return -1;
        set_member(cli->fault_overrides, override_key(opt), cJSON_CreateNumber((double)v));
        return 0;
    case OPT_DIST:
        set_member(cli->fault_overrides, "latencyDist", cJSON_CreateString(arg));
        return 0;
    case OPT_ERROR_RATE:
    case OPT_APPLY_RATE:
        if (parse_probability(arg, flag, &p) != 0)
            return -1;
        set_member(cli->fault_overrides, override_key(opt), cJSON_CreateNumber(p));
        return 0;
    case OPT_ERROR_KINDS:
        kinds = parse_kinds(arg);
        if (kinds == NULL)
            return -1;
        set_member(cli->fault_overrides, "kinds", kinds);
        return 0;
    case OPT_RETRY_AFTER:
        if (parse_int(arg, flag, 0, 86400, &v) != 0)
            return -1;
        set_member(cli->fault_overrides, override_key(opt), cJSON_CreateNumber((double)v));
        return 0;
    case OPT_FAULTS:
        cli->faults_path = arg;
        return 0;
    case OPT_RNG_SEED:
        if (parse_int(arg, flag, 0, INT64_MAX, &v) != 0)
            return -1;
        cli->opts.rng_seed = (uint64_t)v;
        cli->rng_seed_set = true;
        return 0;
    case OPT_CALL_LOG:
        cli->opts.call_log_path = arg;
        return 0;
    case OPT_HELP:
        fputs(usage_text, stdout);
        return 1;
    case OPT_VERSION:
        printf("vpc-sim %s\n", CLW_SIM_VERSION);
        return 1;
    default:
        return bad_usage("%s", "unknown option");
    }
}

static char *read_file(const char *path, size_t *len_out)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;
    size_t cap = 0;
    size_t n;

    if (fp == NULL)
        return NULL;
    do {
        if (len + 4096 + 1 > cap) {
            char *grown;

            cap = (cap + 4096) * 2;
            grown = realloc(buf, cap);
            if (grown == NULL) {
                free(buf);
                buf = NULL;
                goto done;
            }
            buf = grown;
        }
        n = fread(buf + len, 1, cap - len - 1, fp);
        len += n;
    } while (n > 0);
    if (ferror(fp)) {
        free(buf);
        buf = NULL;
        goto done;
    }
    buf[len] = '\0';
    if (len_out != NULL)
        *len_out = len;

done:
    fclose(fp);
    return buf;
}

static cJSON *read_json(const char *path, const char *what)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    cJSON *doc;

    if (text == NULL) {
        fprintf(stderr, "vpc-sim: %s: cannot read %s file\n", path, what);
        return NULL;
    }
    doc = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(doc)) {
        fprintf(stderr, "vpc-sim: %s: %s file is not a JSON object\n", path, what);
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

/* Copies every member of from onto to, replacing members of the same name. */
static void merge_into(cJSON *to, const cJSON *from)
{
    const cJSON *item;

    cJSON_ArrayForEach(item, from)
    {
        cJSON_DeleteItemFromObjectCaseSensitive(to, item->string);
        cJSON_AddItemToObject(to, item->string, cJSON_Duplicate(item, true));
    }
}

/* The seed (file, then --gen-* and --link-limit) and fault documents (file, then flags). */
static int build_documents(struct cli *cli)
{
    cli->opts.seed =
        cli->seed_path != NULL ? read_json(cli->seed_path, "seed") : cJSON_CreateObject();
    if (cli->opts.seed == NULL)
        return -1;
    if (cJSON_GetArraySize(cli->generate) > 0) {
        cJSON *gen = cJSON_GetObjectItemCaseSensitive(cli->opts.seed, "generate");

        if (gen == NULL)
            gen = cJSON_AddObjectToObject(cli->opts.seed, "generate");
        merge_into(gen, cli->generate);
    }
    merge_into(cli->opts.seed, cli->seed_overrides);

    if (cli->faults_path != NULL) {
        cli->opts.faults = read_json(cli->faults_path, "faults");
        if (cli->opts.faults == NULL)
            return -1;
    } else if (cJSON_GetArraySize(cli->fault_overrides) > 0) {
        cli->opts.faults = cJSON_CreateObject();
    }
    if (cli->opts.faults != NULL)
        merge_into(cli->opts.faults, cli->fault_overrides);
    return 0;
}

/* "HOST:PORT" or "[V6]:PORT" into a socket address; host_out gets HOST as written. */
static int parse_listen(const char *listen, struct clw_sim_http_options *hopts, char *host_out,
                        size_t host_outsz)
{
    const char *colon = strrchr(listen, ':');
    char host[256];
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    size_t host_len;

    if (colon == NULL || colon == listen || colon[1] == '\0')
        return bad_usage("--listen: expected HOST:PORT, got '%s'", listen);
    host_len = (size_t)(colon - listen);
    if (host_len >= sizeof(host))
        return bad_usage("--listen: host too long in '%s'", listen);
    snprintf(host_out, host_outsz, "%.*s", (int)host_len, listen);
    if (listen[0] == '[' && host_len >= 2 && listen[host_len - 1] == ']')
        snprintf(host, sizeof(host), "%.*s", (int)host_len - 2, listen + 1);
    else
        snprintf(host, sizeof(host), "%.*s", (int)host_len, listen);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
        return bad_usage("--listen: cannot resolve '%s'", listen);
    memcpy(&hopts->addr, res->ai_addr, res->ai_addrlen);
    hopts->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    FILE *fp;
    int rc = -1;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fp = fopen(tmp, "w");
    if (fp == NULL)
        goto fail;
    fprintf(fp, "%u\n", port);
    if (fclose(fp) != 0 || rename(tmp, path) != 0)
        goto fail;
    rc = 0;

fail:
    if (rc != 0)
        fprintf(stderr, "vpc-sim: %s: cannot write port file\n", path);
    return rc;
}

/* Enough descriptors for the connection limit, as far as the hard limit allows. */
static void raise_fd_limit(unsigned connections)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < (rlim_t)connections + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void cli_init(struct cli *cli)
{
    memset(cli, 0, sizeof(*cli));
    cli->listen = "127.0.0.1:8480";
    cli->threads = 2;
    cli->connection_limit = 10000;
    cli->seed_overrides = cJSON_CreateObject();
    cli->generate = cJSON_CreateObject();
    cli->fault_overrides = cJSON_CreateObject();
    cli->opts.admin = true;
    cli->opts.settings.rules.business_code = 4000;
    cli->opts.settings.rules.same_vpc_attach_ok = false;
    cli->opts.settings.rules.detach_unlinked_ok = false;
    cli->opts.settings.rules.task_delay_ms = 1000;
    cli->opts.settings.window_s = 300;
    cli->opts.settings.clock_skew_s = 0;
    cli->opts.settings.max_instances = 100;
    cli->opts.settings.temp_life_s = CLW_SIM_DEFAULT_LIFE_S;
    cli->opts.settings.expired_code = CLW_SIM_EXPIRED_TOKEN_FAILURE;
    snprintf(cli->opts.settings.sts_provider_error, sizeof(cli->opts.settings.sts_provider_error),
             "%s", "InvalidParameter.ParamError");
    snprintf(cli->opts.settings.sts_role_error, sizeof(cli->opts.settings.sts_role_error), "%s",
             "InternalError.GetRoleError");
}

static void cli_free(struct cli *cli)
{
    cJSON_Delete(cli->seed_overrides);
    cJSON_Delete(cli->generate);
    cJSON_Delete(cli->fault_overrides);
    cJSON_Delete(cli->opts.seed);
    cJSON_Delete(cli->opts.faults);
}

static int parse_args(struct cli *cli, int argc, char **argv)
{
    int idx = 0;
    int opt;
    int rc;

    if (cli->seed_overrides == NULL || cli->generate == NULL || cli->fault_overrides == NULL)
        return -1;
    for (;;) {
        opt = getopt_long(argc, argv, "", long_options, &idx);
        if (opt == -1)
            break;
        rc = parse_option(cli, opt, opt == '?' ? "?" : long_options[idx].name, optarg);
        if (rc != 0)
            return rc;
    }
    if (optind < argc)
        return bad_usage("unexpected argument '%s'", argv[optind]);
    if (cli->opts.credentials_path == NULL)
        return bad_usage("%s", "--credentials FILE is required");
    if (cli->opts.settings.quota > 0 &&
        cli->opts.settings.quota_reserve >= cli->opts.settings.quota)
        return bad_usage("%s", "--quota-reserve must be below --quota");
    if ((cli->tls_cert == NULL) != (cli->tls_key == NULL))
        return bad_usage("%s", "--tls-cert and --tls-key go together");
    if (!cli->rng_seed_set)
        cli->opts.rng_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return build_documents(cli);
}

int main(int argc, char **argv)
{
    struct cli cli;
    struct clw_sim sim;
    struct clw_sim_http http;
    struct clw_sim_http_options hopts;
    char host[256];
    char err[512];
    char *cert = NULL;
    char *key = NULL;
    sigset_t stop_signals;
    int sig = 0;
    int status = EXIT_USAGE;
    int rc;
    bool sim_ready = false;

    cli_init(&cli);
    memset(&hopts, 0, sizeof(hopts));
    rc = parse_args(&cli, argc, argv);
    if (rc != 0) {
        status = rc > 0 ? 0 : EXIT_USAGE;
        goto done;
    }
    if (parse_listen(cli.listen, &hopts, host, sizeof(host)) != 0)
        goto done;
    if (cli.tls_cert != NULL) {
        cert = read_file(cli.tls_cert, NULL);
        key = read_file(cli.tls_key, NULL);
        if (cert == NULL || key == NULL) {
            fprintf(stderr, "vpc-sim: cannot read --tls-cert / --tls-key\n");
            goto done;
        }
        hopts.tls_cert_pem = cert;
        hopts.tls_key_pem = key;
    }
    hopts.threads = cli.threads;
    hopts.connection_limit = cli.connection_limit;

    if (clw_sim_init(&sim, &cli.opts, err, sizeof(err)) != 0) {
        fprintf(stderr, "vpc-sim: %s\n", err);
        clw_sim_free(&sim);
        goto done;
    }
    sim_ready = true;

    /* Signals are taken synchronously by this thread; the server threads inherit the mask. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(cli.connection_limit);

    if (clw_sim_http_start(&http, &sim, &hopts, err, sizeof(err)) != 0) {
        fprintf(stderr, "vpc-sim: %s: %s\n", cli.listen, err);
        status = EXIT_RUNTIME;
        goto done;
    }
    if (cli.port_file != NULL && write_port_file(cli.port_file, http.port) != 0) {
        clw_sim_http_stop(&http);
        status = EXIT_RUNTIME;
        goto done;
    }
    fprintf(stderr, "vpc-sim: %s on %s:%u, rng seed %llu, %zu VPCs, %zu instances\n",
            hopts.tls_cert_pem != NULL ? "https" : "http", host, http.port,
            (unsigned long long)sim.rng_seed, sim.state.nvpcs, sim.state.ninstances);
    printf("listening on %s:%u\n", host, http.port);
    fflush(stdout);

    while (sigwait(&stop_signals, &sig) != 0)
        ;
    fprintf(stderr, "vpc-sim: signal %d, stopping\n", sig);
    clw_sim_http_stop(&http);
    status = 0;

done:
    if (sim_ready)
        clw_sim_free(&sim);
    cli_free(&cli);
    free(cert);
    if (key != NULL) {
        clw_sim_sign_wipe(key, strlen(key));
        free(key);
    }
    return status;
}
