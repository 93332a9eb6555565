/* API answer decoding: the v2 and API 3.0 JSON bodies (codes, task ids and status, link
 * listings) and Retry-After. */
#include "clw/answer.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* From 2^53 on a JSON double no longer tells neighbouring integers apart (2^53 + 1 parses as
 * 2^53), so such numbers count as absent. Digit strings are exact up to the target type. */
#define EXACT_DOUBLE_LIMIT 9007199254740992.0
/* A Retry-After longer than a day is taken as a day: the retry budget ends long before. */
#define RETRY_AFTER_CAP_MS (86400LL * 1000)
/* Rows of a link listing kept from one answer. A v2 page is at most 50 rows and a v3 page is
 * similarly small, so more only comes from a broken or hostile endpoint. */
#define ANSWER_MAX_LINKS 1000

/* A JSON number that is an exact integer within [lo, hi]. */
static int number_to_ll(const cJSON *item, long long lo, long long hi, long long *out)
{
    double d = item->valuedouble;

    if (!isfinite(d) || d != floor(d) || fabs(d) >= EXACT_DOUBLE_LIMIT)
        return 0;
    if (d < (double)lo || d > (double)hi)
        return 0;
    *out = (long long)d;
    return 1;
}

/* A string of 1..18 ASCII digits (no sign, no space) within [0, hi]. 18 digits always fit a
 * long long, so no overflow check is needed before the range test. */
static int digits_to_ll(const char *s, long long hi, long long *out)
{
    long long v = 0;
    size_t n = 0;

    while (s[n] >= '0' && s[n] <= '9') {
        if (n == 18)
            return 0;
        v = v * 10 + (s[n] - '0');
        n++;
    }
    if (n == 0 || s[n] != '\0' || v > hi)
        return 0;
    *out = v;
    return 1;
}

/* An integer member: a JSON integer or a string of digits ("0"). */
static int integer_member(const cJSON *obj, const char *name, long long lo, long long hi,
                          long long *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (cJSON_IsNumber(item))
        return number_to_ll(item, lo, hi, out);
    if (cJSON_IsString(item))
        return digits_to_ll(item->valuestring, hi, out);
    return 0;
}

/* A copy of a string member in *out (NULL when absent or not a string); -1 when out of
 * memory. */
static int string_member(const cJSON *obj, const char *name, char **out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    *out = NULL;
    if (!cJSON_IsString(item))
        return 0;
    *out = strdup(item->valuestring);
    return *out != NULL ? 0 : -1;
}

/* Sets every decoded member to "absent" without freeing (ans is zeroed or freed before). */
static void answer_reset(struct clw_answer *ans, int api_version)
{
    ans->api_version = api_version;
    ans->body_json = 0;
    ans->has_code = 0;
    ans->code = 0;
    ans->code_desc = NULL;
    ans->message = NULL;
    ans->request_id = NULL;
    ans->has_task_id = 0;
    ans->task_id = 0;
    ans->task_status = -1;
    ans->links = NULL;
    ans->n_links = 0;
    ans->total_count = -1;
}

static void answer_free_links(struct clw_answer *ans)
{
    size_t i;

    for (i = 0; i < ans->n_links; i++) {
        free(ans->links[i].instance_id);
        free(ans->links[i].vpc_id);
        free(ans->links[i].un_vpc_id);
    }
    free(ans->links);
    ans->links = NULL;
    ans->n_links = 0;
}

/* Frees what a failed parse had decoded and leaves every member absent. */
static void answer_drop(struct clw_answer *ans, int api_version)
{
    free(ans->message);
    free(ans->code_desc);
    free(ans->request_id);
    answer_free_links(ans);
    answer_reset(ans, api_version);
}

/* cJSON decodes the escape \u0000 into a NUL that silently cuts a C string ("ins-1\u0000x"
 * would read as "ins-1" and could match a requested instance). Every such escape becomes
 * \uFFFD, a character no id or code contains. Backslashes are taken in pairs, so "\\u0000" (an
 * escaped backslash, then text) is left alone; outside strings a backslash is no JSON anyway. */
static void answer_defuse_nul_escapes(char *s, size_t len)
{
    size_t i = 0;

    while (i + 1 < len) {
        if (s[i] != '\\') {
            i++;
            continue;
        }
        if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0)
            memcpy(s + i + 2, "FFFD", 4);
        i += 2;
    }
}

/* Parses body as one JSON value with nothing after it. *root is NULL when the body is not
 * JSON. Returns -1 only on allocation failure. */
static int answer_parse_json(const char *body, size_t len, cJSON **root)
{
    char *copy = NULL;

    *root = NULL;
    /* A NUL inside the body would end cJSON's view of it early: not JSON. */
    if (body == NULL || len == 0 || memchr(body, '\0', len) != NULL)
        return 0;
    copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, body, len);
    copy[len] = '\0';
    answer_defuse_nul_escapes(copy, len);
    /* The terminator is inside the length, so require_null_terminated rejects trailing data. */
    *root = cJSON_ParseWithLengthOpts(copy, len + 1, NULL, 1);
    free(copy);
    return 0;
}

/* The member names of one link row: v2 {instanceId, vpcId, unVpcId}, v3 {InstanceId, VpcId}. */
struct link_names {
    const char *instance_id;
    const char *vpc_id;
    const char *un_vpc_id; /* NULL: the grammar has none */
};

static int link_row_usable(const cJSON *row, const struct link_names *names)
{
    return cJSON_IsObject(row) &&
           cJSON_IsString(cJSON_GetObjectItemCaseSensitive(row, names->instance_id));
}

/* Copies the usable rows of the array member name of obj (objects with a string instance id;
 * at most ANSWER_MAX_LINKS, the rest ignored) into ans->links. Anything that is not such an
 * array leaves no links. Two passes: the first only counts, so the copy is allocated once at
 * its final size. Returns -1 on allocation failure (the links so far stay in ans). */
static int links_member(struct clw_answer *ans, const cJSON *obj, const char *name,
                        const struct link_names *names)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, name);
    const cJSON *row;
    size_t want = 0;

    if (!cJSON_IsArray(arr))
        return 0;
    cJSON_ArrayForEach(row, arr)
    {
        if (want == ANSWER_MAX_LINKS)
            break;
        if (link_row_usable(row, names))
            want++;
    }
    if (want == 0)
        return 0;
    ans->links = calloc(want, sizeof(*ans->links));
    if (ans->links == NULL)
        return -1;
    cJSON_ArrayForEach(row, arr)
    {
        struct clw_link *link;

        if (ans->n_links == want)
            break;
        if (!link_row_usable(row, names))
            continue;
        link = &ans->links[ans->n_links++];
        if (string_member(row, names->instance_id, &link->instance_id) != 0 ||
            string_member(row, names->vpc_id, &link->vpc_id) != 0)
            return -1;
        if (names->un_vpc_id != NULL && string_member(row, names->un_vpc_id, &link->un_vpc_id) != 0)
            return -1;
    }
    return 0;
}

/* DescribeVpcTaskResult's data.status: 0 success, 1 failed, 2 running; anything else absent. */
static void task_status_member(struct clw_answer *ans, const cJSON *obj)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(obj, "data");
    long long v;

    if (cJSON_IsObject(data) && integer_member(data, "status", 0, 2, &v))
        ans->task_status = (int)v;
}

static void total_count_member(struct clw_answer *ans, const cJSON *obj, const char *name)
{
    long long v;

    if (integer_member(obj, name, 0, LONG_MAX, &v))
        ans->total_count = (long)v;
}

static void task_id_member(struct clw_answer *ans, const cJSON *obj, const char *name)
{
    long long v;

    if (integer_member(obj, name, LLONG_MIN, LLONG_MAX, &v)) {
        ans->has_task_id = 1;
        ans->task_id = v;
    }
}

int clw_answer_parse_body(struct clw_answer *ans, const char *body, size_t len)
{
    static const struct link_names v2_link = {"instanceId", "vpcId", "unVpcId"};
    cJSON *root = NULL;
    long long v;
    int rc = -1;

    answer_reset(ans, 2);
    if (answer_parse_json(body, len, &root) != 0)
        goto fail;
    if (!cJSON_IsObject(root))
        goto done;
    ans->body_json = 1;
    if (integer_member(root, "code", LONG_MIN, LONG_MAX, &v)) {
        ans->has_code = 1;
        ans->code = (long)v;
    }
    task_id_member(ans, root, "taskId");
    task_status_member(ans, root);
    total_count_member(ans, root, "totalCount");
    if (string_member(root, "message", &ans->message) != 0 ||
        string_member(root, "codeDesc", &ans->code_desc) != 0 ||
        links_member(ans, root, "data", &v2_link) != 0)
        goto fail;
done:
    rc = 0;
fail:
    if (rc != 0)
        answer_drop(ans, 2);
    cJSON_Delete(root);
    return rc;
}

int clw_answer_parse_body_v3(struct clw_answer *ans, const char *body, size_t len)
{
    static const struct link_names v3_link = {"InstanceId", "VpcId", NULL};
    cJSON *root = NULL;
    const cJSON *resp;
    const cJSON *err;
    int rc = -1;

    answer_reset(ans, 3);
    if (answer_parse_json(body, len, &root) != 0)
        goto fail;
    resp = cJSON_GetObjectItemCaseSensitive(root, "Response");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(resp))
        goto done;
    ans->body_json = 1;
    /* Success is a Response without an Error member. An Error that is not an object (null, a
     * string, ...) is neither success nor a code: has_code stays 0 with no code_desc, which
     * classifies like a v2 body without a code. */
    err = cJSON_GetObjectItemCaseSensitive(resp, "Error");
    if (err == NULL) {
        ans->has_code = 1;
        ans->code = 0;
    } else if (cJSON_IsObject(err)) {
        if (string_member(err, "Code", &ans->code_desc) != 0 ||
            string_member(err, "Message", &ans->message) != 0)
            goto fail;
    }
    task_id_member(ans, resp, "TaskId");
    total_count_member(ans, resp, "TotalCount");
    if (string_member(resp, "RequestId", &ans->request_id) != 0 ||
        links_member(ans, resp, "ClassicLinkInstanceSet", &v3_link) != 0)
        goto fail;
done:
    rc = 0;
fail:
    if (rc != 0)
        answer_drop(ans, 3);
    cJSON_Delete(root);
    return rc;
}

void clw_answer_free(struct clw_answer *ans)
{
    if (ans == NULL)
        return;
    free(ans->message);
    free(ans->code_desc);
    free(ans->request_id);
    answer_free_links(ans);
    memset(ans, 0, sizeof(*ans));
}

/* ---- temporary credentials ---- */

static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    volatile char *v = s;
    for (size_t i = 0; s[i] != '\0'; i++)
        v[i] = 0;
    free(s);
}

void clw_tmp_creds_free(struct clw_tmp_creds *c)
{
    if (c == NULL)
        return;
    wipe_free(c->secret_id);
    wipe_free(c->secret_key);
    wipe_free(c->token);
    memset(c, 0, sizeof(*c));
}

static void set_why(char *why, size_t whylen, const char *a, const char *b)
{
    if (why != NULL && whylen > 0)
        snprintf(why, whylen, "%s%s", a, b);
}

/* A non-empty string member copied into *out; 0 found, 1 absent or empty, -1 out of memory. */
static int secret_member(const cJSON *obj, const char *name, char **out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsString(item) || item->valuestring[0] == '\0')
        return 1;
    *out = strdup(item->valuestring);
    return *out != NULL ? 0 : -1;
}

int clw_answer_parse_tmp_creds(enum clw_tmp_creds_doc doc, const char *body, size_t len,
                               struct clw_tmp_creds *out, char *why, size_t whylen)
{
    static const char *const names[] = {"TmpSecretId", "TmpSecretKey", "Token"};
    cJSON *root = NULL;
    const cJSON *creds;
    const cJSON *holder; /* the object with ExpiredTime */
    int rc = -1;
    long long expired = 0;

    if (answer_parse_json(body, len, &root) != 0) {
        set_why(why, whylen, "out of memory", "");
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        set_why(why, whylen, "not a JSON object", "");
        goto out;
    }
    rc = 1;
    if (doc == CLW_TMP_CREDS_METADATA) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(root, "Code");
        if (!cJSON_IsString(code) || strcmp(code->valuestring, "Success") != 0) {
            set_why(why, whylen, "Code is not \"Success\"", "");
            goto out;
        }
        creds = holder = root;
    } else {
        const cJSON *resp = cJSON_GetObjectItemCaseSensitive(root, "Response");
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(resp, "Error");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "Code");
        if (!cJSON_IsObject(resp)) {
            rc = -1;
            set_why(why, whylen, "no Response object", "");
            goto out;
        }
        if (err != NULL) {
            set_why(why, whylen, "STS answered ",
                    cJSON_IsString(code) ? code->valuestring : "an error without a Code");
            goto out;
        }
        creds = cJSON_GetObjectItemCaseSensitive(resp, "Credentials");
        holder = resp;
        if (!cJSON_IsObject(creds)) {
            set_why(why, whylen, "Credentials is missing", "");
            goto out;
        }
    }
    char **slots[] = {&out->secret_id, &out->secret_key, &out->token};
    for (size_t i = 0; i < 3; i++) {
        int got = secret_member(creds, names[i], slots[i]);
        if (got != 0) {
            if (got < 0)
                rc = -1;
            if (got < 0)
                set_why(why, whylen, "out of memory reading ", names[i]);
            else
                set_why(why, whylen, names[i], " is missing");
            goto out;
        }
    }
    /* integer_member's lower bound holds for numbers only: "0" as a string passes it. */
    if (!integer_member(holder, "ExpiredTime", 1, INT64_MAX / 1000, &expired) || expired < 1) {
        set_why(why, whylen, "ExpiredTime is missing or not a positive integer", "");
        goto out;
    }
    out->expired_s = (int64_t)expired;
    rc = 0;
out:
    if (rc != 0)
        clw_tmp_creds_free(out);
    cJSON_Delete(root);
    return rc;
}

/* ---- Retry-After ---- */

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Exactly n ASCII digits at s, as a number; -1 otherwise. */
static int fixed_digits(const char *s, size_t n)
{
    int v = 0;
    size_t k;

    for (k = 0; k < n; k++) {
        if (s[k] < '0' || s[k] > '9')
            return -1;
        v = v * 10 + (s[k] - '0');
    }
    return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return days[m - 1] + (m == 2 && leap);
}

/* IMF-fixdate (RFC 9110 5.6.7), the only HTTP date form senders may generate:
 * "Sun, 06 Nov 1994 08:49:37 GMT" (exactly 29 characters). The obsolete RFC 850 and asctime
 * forms are not accepted (they count as unparseable). Returns 0 and the epoch milliseconds. */
static int parse_imf_fixdate(const char *s, size_t n, int64_t *out_ms)
{
    static const char *const wdays[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int k, wday = -1, mon = 0, day, year, hh, mm, ss;

    if (n != 29 || memcmp(s + 3, ", ", 2) != 0 || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return -1;
    for (k = 0; k < 7; k++) {
        if (memcmp(s, wdays[k], 3) == 0)
            wday = k;
    }
    for (k = 0; k < 12; k++) {
        if (memcmp(s + 8, months[k], 3) == 0)
            mon = k + 1;
    }
    day = fixed_digits(s + 5, 2);
    year = fixed_digits(s + 12, 4);
    hh = fixed_digits(s + 17, 2);
    mm = fixed_digits(s + 20, 2);
    ss = fixed_digits(s + 23, 2);
    if (wday < 0 || mon == 0 || day < 1 || year < 0 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
        ss < 0 || ss > 60 || day > days_in_month(year, mon))
        return -1;
    *out_ms = ((days_from_civil(year, mon, day) * 24 + hh) * 60 + mm) * 60000LL + ss * 1000LL;
    return 0;
}

int64_t clw_answer_parse_retry_after(const char *value, int64_t now_wall_ms)
{
    size_t n, k;
    int64_t ms = 0, at;

    if (value == NULL)
        return -1;
    while (is_space(*value))
        value++;
    n = strlen(value);
    while (n > 0 && is_space(value[n - 1]))
        n--;
    if (n == 0)
        return -1;
    if (value[0] >= '0' && value[0] <= '9') {
        /* delta-seconds: 1*DIGIT; saturate at the cap instead of overflowing. */
        for (k = 0; k < n; k++) {
            if (value[k] < '0' || value[k] > '9')
                return -1;
            if (ms < RETRY_AFTER_CAP_MS)
                ms = ms * 10 + (value[k] - '0') * 1000LL;
        }
        return ms < RETRY_AFTER_CAP_MS ? ms : RETRY_AFTER_CAP_MS;
    }
    if (parse_imf_fixdate(value, n, &at) != 0)
        return -1;
    if (at <= now_wall_ms)
        return 0;
    return at - now_wall_ms < RETRY_AFTER_CAP_MS ? at - now_wall_ms : RETRY_AFTER_CAP_MS;
}
