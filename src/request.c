/* Request decoding: strict JSON check, cJSON parse, the contract's first-match invalid reasons. */
#include "clw/request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/alloc.h"

#include <cjson/cJSON.h>

/* cJSON's own nesting limit (CJSON_NESTING_LIMIT): deeper input is NotJson here already, so
 * cJSON's recursive parser and cJSON_Delete() never go deeper than this. */
#define JSON_MAX_DEPTH 1000
/* cJSON copies at most 63 characters of a number before strtod(); a longer number token would
 * fail inside cJSON, so the strict check rejects it first with a clear detail. */
#define JSON_MAX_NUMBER 63

#define DEFAULT_MAX_BYTES     65536
#define DEFAULT_MAX_INSTANCES 100
#define RAW_REQUEST_ID_MAX    128 /* bytes of an invalid requestId echoed as rawRequestId */
#define DETAIL_ECHO_MAX       64  /* bytes of user input a detail may quote */
#define DETAIL_SIZE           192

/* The contract's invalid reasons in first-match order; the index is the rank. */
enum reason_rank {
    R_EMPTY = 0,
    R_TOO_LARGE,
    R_NOT_JSON,
    R_NOT_OBJECT,
    R_DUPLICATE_FIELD,
    R_UNSUPPORTED_VERSION,
    R_MISSING_FIELD,
    R_WRONG_TYPE,
    R_BAD_REQUEST_ID,
    R_BAD_ACTION,
    R_BAD_REGION,
    R_MISSING_REGION,
    R_BAD_VPC_ID,
    R_BAD_INSTANCE_ID,
    R_DUPLICATE_INSTANCE_ID,
    R_TOO_MANY_INSTANCES,
    R_NONE
};

static const char *const reason_names[R_NONE] = {
    "Empty",
    "TooLarge",
    "NotJson",
    "NotObject",
    "DuplicateField",
    "UnsupportedVersion",
    "MissingField",
    "WrongType",
    "BadRequestId",
    "BadAction",
    "BadRegion",
    "MissingRegion",
    "BadVpcId",
    "BadInstanceId",
    "DuplicateInstanceId",
    "TooManyInstances",
};

/* The first (lowest-rank) problem found so far and its detail. */
struct verdict {
    enum reason_rank rank;
    char detail[DETAIL_SIZE];
    int region_defaulted; /* req->region is api.region: the request named none */
};

static void note(struct verdict *v, enum reason_rank rank, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void note(struct verdict *v, enum reason_rank rank, const char *fmt, ...)
{
    va_list ap;

    if (rank >= v->rank)
        return;
    v->rank = rank;
    va_start(ap, fmt);
    vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
    va_end(ap);
}

const char *clw_action_name(enum clw_action action)
{
    switch (action) {
    case CLW_ACTION_ATTACH:
        return "AttachClassicLinkVpc";
    case CLW_ACTION_DETACH:
        return "DetachClassicLinkVpc";
    }
    return NULL;
}

/* ---- UTF-8 ---- */

int clw_utf8_valid(const void *p, size_t len)
{
    const unsigned char *s = p;
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        unsigned char lo = 0x80, hi = 0xBF;
        size_t need, k;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c == 0xE0) {
            need = 2;
            lo = 0xA0; /* no overlong 3-byte forms */
        } else if (c == 0xED) {
            need = 2;
            hi = 0x9F; /* no UTF-16 surrogates */
        } else if (c >= 0xE1 && c <= 0xEF) {
            need = 2;
        } else if (c == 0xF0) {
            need = 3;
            lo = 0x90; /* no overlong 4-byte forms */
        } else if (c >= 0xF1 && c <= 0xF3) {
            need = 3;
        } else if (c == 0xF4) {
            need = 3;
            hi = 0x8F; /* nothing above U+10FFFF */
        } else {
            return 0; /* continuation byte, C0/C1 (overlong), F5..FF */
        }
        if (len - i - 1 < need)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (k = 2; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        }
        i += need + 1;
    }
    return 1;
}

/* Largest n <= max that does not split a UTF-8 sequence of the valid string s (length len). */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    size_t n = len;

    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* ---- id grammar ---- */

static int is_lower_or_digit(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_request_id_char(unsigned char c)
{
    return is_lower_or_digit(c) || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' || c == ':' ||
           c == '-';
}

/* 1 when s (NUL-terminated) is min..max characters that each satisfy ok(). */
static int span_of(const char *s, size_t min, size_t max, int (*ok)(unsigned char))
{
    size_t n = 0;

    while (s[n] != '\0') {
        if (n >= max || !ok((unsigned char)s[n]))
            return 0;
        n++;
    }
    return n >= min;
}

static int is_region_char(unsigned char c)
{
    return is_lower_or_digit(c) || c == '-';
}

static int is_lower(unsigned char c)
{
    return c >= 'a' && c <= 'z';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Count of leading characters of s satisfying ok(). */
static size_t run_of(const char *s, int (*ok)(unsigned char))
{
    size_t n = 0;

    while (s[n] != '\0' && ok((unsigned char)s[n]))
        n++;
    return n;
}

/* vpc-[a-z0-9]{1,32}, or the legacy form [a-z]{1,16}_vpc_[0-9]{1,20} (e.g. gz_vpc_245): a
 * lowercase region prefix, the literal "_vpc_", a decimal number; nothing else is accepted. */
int clw_request_valid_vpc_id(const char *s)
{
    size_t letters, digits;

    if (s == NULL)
        return 0;
    if (strncmp(s, "vpc-", 4) == 0)
        return span_of(s + 4, 1, 32, is_lower_or_digit);
    letters = run_of(s, is_lower);
    if (letters < 1 || letters > 16 || strncmp(s + letters, "_vpc_", 5) != 0)
        return 0;
    s += letters + 5;
    digits = run_of(s, is_digit);
    return digits >= 1 && digits <= 20 && s[digits] == '\0';
}

int clw_request_valid_instance_id(const char *s)
{
    if (s == NULL || strncmp(s, "ins-", 4) != 0)
        return 0;
    return span_of(s + 4, 1, 32, is_lower_or_digit);
}

int clw_request_valid_region(const char *s)
{
    return s != NULL && span_of(s, 1, 32, is_region_char);
}

int clw_request_valid_request_id(const char *s)
{
    return s != NULL && span_of(s, 1, 128, is_request_id_char);
}

/* ---- strict JSON check (RFC 8259) ---- */

/* Checks the whole text against the JSON grammar without building anything: no raw control
 * characters in strings, exact number syntax, only the four JSON white-space characters, no
 * byte order mark, no trailing data, paired \u surrogate escapes, nesting <= JSON_MAX_DEPTH.
 * cJSON alone accepts some non-JSON (leading zeros, "1.", any byte <= 0x20 as white space) and
 * decodes \u0000 into a NUL that would silently cut a C string ("vpc-1\u0000x" -> "vpc-1").
 * So every \u0000 escape is rewritten in place to \uFFFD: the value keeps a character that no
 * id grammar accepts and no key name collides with a known field. s must be writable. */
struct json_scan {
    char *s;
    size_t len;
    size_t pos;
    const char *why;
};

static int scan_fail(struct json_scan *sc, const char *why)
{
    sc->why = why;
    return -1;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u" at s[at]; -1 when they are not there. */
static long scan_hex4(const struct json_scan *sc, size_t at)
{
    long v = 0;
    size_t k;

    if (sc->len - at < 6 || sc->s[at] != '\\' || sc->s[at + 1] != 'u')
        return -1;
    for (k = 2; k < 6; k++) {
        int h = hex_value(sc->s[at + k]);

        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static int scan_string(struct json_scan *sc)
{
    sc->pos++; /* opening quote */
    while (sc->pos < sc->len) {
        unsigned char c = (unsigned char)sc->s[sc->pos];
        long code;

        if (c == '"') {
            sc->pos++;
            return 0;
        }
        if (c < 0x20)
            return scan_fail(sc, "control character in a string");
        if (c != '\\') {
            sc->pos++;
            continue;
        }
        if (sc->len - sc->pos < 2)
            return scan_fail(sc, "unterminated string");
        switch (sc->s[sc->pos + 1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            sc->pos += 2;
            continue;
        case 'u':
            break;
        default:
            return scan_fail(sc, "bad escape in a string");
        }
        code = scan_hex4(sc, sc->pos);
        if (code < 0)
            return scan_fail(sc, "bad \\u escape");
        if (code >= 0xDC00 && code <= 0xDFFF)
            return scan_fail(sc, "unpaired surrogate escape");
        if (code >= 0xD800 && code <= 0xDBFF) {
            long low = scan_hex4(sc, sc->pos + 6);

            if (low < 0xDC00 || low > 0xDFFF)
                return scan_fail(sc, "unpaired surrogate escape");
            sc->pos += 12;
            continue;
        }
        if (code == 0)
            memcpy(sc->s + sc->pos + 2, "FFFD", 4);
        sc->pos += 6;
    }
    return scan_fail(sc, "unterminated string");
}

static size_t scan_digits(struct json_scan *sc)
{
    size_t n = 0;

    while (sc->pos < sc->len && sc->s[sc->pos] >= '0' && sc->s[sc->pos] <= '9') {
        sc->pos++;
        n++;
    }
    return n;
}

static int scan_number(struct json_scan *sc)
{
    size_t start = sc->pos;

    if (sc->s[sc->pos] == '-')
        sc->pos++;
    if (sc->pos < sc->len && sc->s[sc->pos] == '0') {
        sc->pos++;
    } else if (scan_digits(sc) == 0) {
        return scan_fail(sc, "bad number");
    }
    if (sc->pos < sc->len && sc->s[sc->pos] == '.') {
        sc->pos++;
        if (scan_digits(sc) == 0)
            return scan_fail(sc, "bad number");
    }
    if (sc->pos < sc->len && (sc->s[sc->pos] == 'e' || sc->s[sc->pos] == 'E')) {
        sc->pos++;
        if (sc->pos < sc->len && (sc->s[sc->pos] == '+' || sc->s[sc->pos] == '-'))
            sc->pos++;
        if (scan_digits(sc) == 0)
            return scan_fail(sc, "bad number");
    }
    if (sc->pos - start > JSON_MAX_NUMBER)
        return scan_fail(sc, "number longer than 63 characters");
    return 0;
}

static int scan_literal(struct json_scan *sc)
{
    static const char *const words[] = {"true", "false", "null"};
    size_t k;

    for (k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
        size_t n = strlen(words[k]);

        if (sc->len - sc->pos >= n && memcmp(sc->s + sc->pos, words[k], n) == 0) {
            sc->pos += n;
            return 0;
        }
    }
    return scan_fail(sc, "unexpected character");
}

enum scan_expect {
    X_VALUE,          /* a value (top level, after ':' or after ',' in an array) */
    X_VALUE_OR_CLOSE, /* just after '[' */
    X_KEY_OR_CLOSE,   /* just after '{' */
    X_KEY,            /* after ',' in an object */
    X_COLON,          /* after a key */
    X_AFTER_VALUE     /* ',' or the closing bracket, or the end at top level */
};

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Iterative (no recursion), so any depth of hostile nesting costs one byte of stack a level
 * up to the limit and then fails. */
static int json_check(struct json_scan *sc)
{
    char stack[JSON_MAX_DEPTH];
    size_t depth = 0;
    enum scan_expect expect = X_VALUE;

    for (;;) {
        char c;

        while (sc->pos < sc->len && is_json_space(sc->s[sc->pos]))
            sc->pos++;
        if (sc->pos == sc->len) {
            if (expect == X_AFTER_VALUE && depth == 0)
                return 0;
            return scan_fail(sc, "unexpected end of input");
        }
        c = sc->s[sc->pos];
        switch (expect) {
        case X_KEY_OR_CLOSE:
        case X_KEY:
            if (c == '}' && expect == X_KEY_OR_CLOSE) {
                sc->pos++;
                depth--;
                expect = X_AFTER_VALUE;
                break;
            }
            if (c != '"')
                return scan_fail(sc, "expected a field name");
            if (scan_string(sc) != 0)
                return -1;
            expect = X_COLON;
            break;
        case X_COLON:
            if (c != ':')
                return scan_fail(sc, "expected ':'");
            sc->pos++;
            expect = X_VALUE;
            break;
        case X_AFTER_VALUE:
            if (depth == 0)
                return scan_fail(sc, "trailing data after the value");
            if (c == ',') {
                sc->pos++;
                expect = stack[depth - 1] == '{' ? X_KEY : X_VALUE;
            } else if ((c == '}' && stack[depth - 1] == '{') ||
                       (c == ']' && stack[depth - 1] == '[')) {
                sc->pos++;
                depth--;
            } else {
                return scan_fail(sc, "expected ',' or a closing bracket");
            }
            break;
        case X_VALUE:
        case X_VALUE_OR_CLOSE:
            if (c == ']' && expect == X_VALUE_OR_CLOSE) {
                sc->pos++;
                depth--;
                expect = X_AFTER_VALUE;
                break;
            }
            if (c == '{' || c == '[') {
                if (depth == JSON_MAX_DEPTH)
                    return scan_fail(sc, "nesting deeper than 1000 levels");
                stack[depth++] = c;
                sc->pos++;
                expect = c == '{' ? X_KEY_OR_CLOSE : X_VALUE_OR_CLOSE;
                break;
            }
            if (c == '"') {
                if (scan_string(sc) != 0)
                    return -1;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                if (scan_number(sc) != 0)
                    return -1;
            } else if (scan_literal(sc) != 0) {
                return -1;
            }
            expect = X_AFTER_VALUE;
            break;
        }
    }
}

/* ---- field extraction ---- */

static int compare_names(const void *a, const void *b)
{
    const char *const *x = a;
    const char *const *y = b;

    return strcmp(*x, *y);
}

/* Finds a top-level field named twice or more (O(n log n): a 64 KiB object may hold ~10 000
 * fields). Returns 0 and sets *dup (NULL when none), -1 on allocation failure. Names cannot
 * hold NUL bytes (json_check rewrote \u0000), so strcmp compares whole names. */
static int find_duplicate(const cJSON *root, const char **dup)
{
    const cJSON *it;
    const char **names = NULL;
    size_t n = 0, k;

    *dup = NULL;
    for (it = root->child; it != NULL; it = it->next)
        n++;
    if (n < 2)
        return 0;
    names = clw_malloc(n * sizeof(*names));
    if (names == NULL)
        return -1;
    n = 0;
    for (it = root->child; it != NULL; it = it->next)
        names[n++] = it->string;
    qsort(names, n, sizeof(*names), compare_names);
    for (k = 1; k < n && *dup == NULL; k++) {
        if (strcmp(names[k - 1], names[k]) == 0)
            *dup = names[k];
    }
    free(names);
    return 0;
}

enum presence { P_ABSENT = 0, P_PRESENT, P_DUPLICATE };

/* The field called name when it occurs once and is not null; *how says absent (or null),
 * present, or named more than once (then DuplicateField is the verdict and the field counts as
 * not carried validly). */
static const cJSON *field(const cJSON *root, const char *name, enum presence *how)
{
    const cJSON *it, *found = NULL;

    *how = P_ABSENT;
    for (it = root->child; it != NULL; it = it->next) {
        if (strcmp(it->string, name) != 0)
            continue;
        if (found != NULL) {
            *how = P_DUPLICATE;
            return NULL;
        }
        found = it;
    }
    if (found == NULL || cJSON_IsNull(found))
        return NULL;
    *how = P_PRESENT;
    return found;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = clw_malloc(n + 1);

    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *dup_s(const char *s)
{
    return dup_n(s, strlen(s));
}

static void free_ids(char **ids, size_t n)
{
    size_t k;

    if (ids == NULL)
        return;
    for (k = 0; k < n; k++)
        free(ids[k]);
    free(ids);
}

struct id_ref {
    const char *s;
    size_t index;
};

static int compare_id_refs(const void *a, const void *b)
{
    const struct id_ref *x = a;
    const struct id_ref *y = b;
    int c = strcmp(x->s, y->s);

    if (c != 0)
        return c;
    return x->index < y->index ? -1 : (x->index > y->index);
}

/* Finds the earliest repeat in input order: returns 1 and notes DuplicateInstanceId, 0 when
 * all are distinct, -1 on allocation failure. ids are valid instance ids by now, so quoting
 * one in the detail is safe and short. */
static int check_distinct(struct verdict *v, const cJSON *arr, size_t n)
{
    struct id_ref *refs;
    const cJSON *it;
    size_t k, group = 0, at = 0, first = 0;
    const char *which = NULL;

    refs = clw_malloc(n * sizeof(*refs));
    if (refs == NULL)
        return -1;
    k = 0;
    for (it = arr->child; it != NULL; it = it->next) {
        refs[k].s = it->valuestring;
        refs[k].index = k;
        k++;
    }
    qsort(refs, n, sizeof(*refs), compare_id_refs);
    for (k = 1; k < n; k++) {
        if (strcmp(refs[group].s, refs[k].s) != 0) {
            group = k;
        } else if (which == NULL || refs[k].index < at) {
            which = refs[k].s;
            at = refs[k].index;
            first = refs[group].index;
        }
    }
    if (which != NULL)
        note(v, R_DUPLICATE_INSTANCE_ID, "instanceIds[%zu] repeats instanceIds[%zu] (%s)", at,
             first, which);
    free(refs);
    return which != NULL;
}

/* Copies the n strings of arr; NULL when out of memory. */
static char **copy_strings(const cJSON *arr, size_t n)
{
    char **out = clw_calloc(n, sizeof(*out));
    const cJSON *it;
    size_t k = 0;

    if (out == NULL)
        goto fail;
    for (it = arr->child; it != NULL; it = it->next) {
        out[k] = dup_s(it->valuestring);
        if (out[k] == NULL)
            goto fail;
        k++;
    }
    return out;
fail:
    free_ids(out, k);
    return NULL;
}

/* Checks instanceIds and, when the whole list is valid, copies it into req. */
static int take_instances(struct clw_request *req, struct verdict *v, const cJSON *arr,
                          size_t max_instances)
{
    const cJSON *it;
    size_t n = 0;
    int ok = 1, rc;

    if (!cJSON_IsArray(arr)) {
        note(v, R_WRONG_TYPE, "instanceIds must be an array of strings");
        return 0;
    }
    for (it = arr->child; it != NULL; it = it->next, n++) {
        if (!cJSON_IsString(it)) {
            note(v, R_WRONG_TYPE, "instanceIds[%zu] must be a string", n);
            ok = 0;
        } else if (!clw_request_valid_instance_id(it->valuestring)) {
            note(v, R_BAD_INSTANCE_ID, "instanceIds[%zu] must match ins-[a-z0-9]{1,32}", n);
            ok = 0;
        }
    }
    /* An empty list names no instance: the contract asks for 1..max, and [] is treated like
     * an absent list (MissingField), not as a bad or oversized one. */
    if (n == 0) {
        note(v, R_MISSING_FIELD, "instanceIds must not be empty");
        return 0;
    }
    if (!ok)
        return 0;
    rc = check_distinct(v, arr, n);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (n > max_instances) {
        note(v, R_TOO_MANY_INSTANCES, "instanceIds has %zu entries, at most %zu are allowed", n,
             max_instances);
        return 0;
    }
    req->instance_ids = copy_strings(arr, n);
    if (req->instance_ids == NULL)
        return -1;
    req->n_instances = n;
    return 0;
}

static int take_request_id(struct clw_request *req, struct verdict *v, const cJSON *rid)
{
    const char *s;

    if (rid == NULL)
        return 0;
    if (!cJSON_IsString(rid)) {
        note(v, R_WRONG_TYPE, "requestId must be a string");
        return 0;
    }
    s = rid->valuestring;
    if (clw_request_valid_request_id(s)) {
        req->request_id = dup_s(s);
        return req->request_id != NULL ? 0 : -1;
    }
    note(v, R_BAD_REQUEST_ID, "requestId must be 1-128 characters of [A-Za-z0-9._:-]");
    req->raw_request_id = dup_n(s, utf8_cut(s, strlen(s), RAW_REQUEST_ID_MAX));
    return req->raw_request_id != NULL ? 0 : -1;
}

static void take_action(struct clw_request *req, struct verdict *v, const cJSON *action,
                        enum presence how)
{
    if (how == P_DUPLICATE)
        return;
    if (action != NULL && !cJSON_IsString(action)) {
        note(v, R_WRONG_TYPE, "action must be a string");
    } else if (action == NULL || strcmp(action->valuestring, "AttachClassicLinkVpc") == 0) {
        /* Absent means the default, AttachClassicLinkVpc. */
        req->has_action = 1;
        req->action = CLW_ACTION_ATTACH;
    } else if (strcmp(action->valuestring, "DetachClassicLinkVpc") == 0) {
        req->has_action = 1;
        req->action = CLW_ACTION_DETACH;
    } else {
        note(v, R_BAD_ACTION, "action must be AttachClassicLinkVpc or DetachClassicLinkVpc");
    }
}

/* A region the request names but gets wrong is not replaced by the default: the request did
 * not carry it validly, so the outcome shows null. */
static int take_region(struct clw_request *req, struct verdict *v, const cJSON *region,
                       enum presence how, const char *default_region)
{
    const char *use = NULL;

    if (how == P_DUPLICATE)
        return 0;
    if (region == NULL && default_region == NULL)
        note(v, R_MISSING_REGION, "region is required (api.region is not set)");
    else if (region == NULL) {
        use = default_region;
        v->region_defaulted = 1;
    } else if (!cJSON_IsString(region))
        note(v, R_WRONG_TYPE, "region must be a string");
    else if (!clw_request_valid_region(region->valuestring))
        note(v, R_BAD_REGION, "region must match [a-z0-9-]{1,32}");
    else
        use = region->valuestring;
    if (use == NULL)
        return 0;
    req->region = dup_s(use);
    return req->region != NULL ? 0 : -1;
}

static int take_vpc_id(struct clw_request *req, struct verdict *v, const cJSON *vpc)
{
    if (vpc == NULL) {
        note(v, R_MISSING_FIELD, "vpcId is required");
        return 0;
    }
    if (!cJSON_IsString(vpc)) {
        note(v, R_WRONG_TYPE, "vpcId must be a string");
        return 0;
    }
    if (!clw_request_valid_vpc_id(vpc->valuestring)) {
        note(v, R_BAD_VPC_ID, "vpcId must match vpc-[a-z0-9]{1,32} or <letters>_vpc_<digits>");
        return 0;
    }
    req->vpc_id = dup_s(vpc->valuestring);
    return req->vpc_id != NULL ? 0 : -1;
}

/* Evaluates every known field on its own (so whatever was carried validly is kept, whatever
 * the verdict) and notes problems; note() keeps the first in contract order. A field named
 * twice is skipped: DuplicateField outranks anything it could add. */
static int take_fields(struct clw_request *req, struct verdict *v, const cJSON *root,
                       const char *default_region, size_t max_instances)
{
    enum presence how;
    const cJSON *it;
    const char *dup = NULL;

    if (find_duplicate(root, &dup) != 0)
        return -1;
    if (dup != NULL)
        note(v, R_DUPLICATE_FIELD, "field \"%.*s\" appears more than once",
             (int)utf8_cut(dup, strlen(dup), DETAIL_ECHO_MAX), dup);

    /* schemaVersion: any number other than exactly 1 (1.0 is 1; 1.5, 2, 1e400 are not). */
    it = field(root, "schemaVersion", &how);
    if (it != NULL && !cJSON_IsNumber(it))
        note(v, R_WRONG_TYPE, "schemaVersion must be a number");
    else if (it != NULL && it->valuedouble != 1.0)
        note(v, R_UNSUPPORTED_VERSION, "schemaVersion must be 1");

    if (take_request_id(req, v, field(root, "requestId", &how)) != 0)
        return -1;
    it = field(root, "action", &how);
    take_action(req, v, it, how);
    it = field(root, "region", &how);
    if (take_region(req, v, it, how, default_region) != 0)
        return -1;
    if (take_vpc_id(req, v, field(root, "vpcId", &how)) != 0)
        return -1;
    it = field(root, "instanceIds", &how);
    if (it == NULL) {
        note(v, R_MISSING_FIELD, "instanceIds is required");
        return 0;
    }
    return take_instances(req, v, it, max_instances);
}

/* ---- entry points ---- */

static int decode(struct clw_request *req, struct verdict *v, const char *payload, size_t len,
                  const struct clw_request_limits *lim, const char *default_region)
{
    size_t max_bytes = lim != NULL ? lim->max_bytes : DEFAULT_MAX_BYTES;
    size_t max_instances = lim != NULL ? lim->max_instances : DEFAULT_MAX_INSTANCES;
    struct json_scan sc = {0};
    char *copy = NULL;
    cJSON *root = NULL;
    int rc = -1;

    if (payload == NULL) {
        note(v, R_EMPTY, "null value (tombstone)");
        goto done;
    }
    if (len == 0) {
        note(v, R_EMPTY, "empty value");
        goto done;
    }
    if (len > max_bytes) {
        note(v, R_TOO_LARGE, "value of %zu bytes exceeds %zu", len, max_bytes);
        goto done;
    }
    if (!clw_utf8_valid(payload, len)) {
        note(v, R_NOT_JSON, "value is not valid UTF-8");
        goto done;
    }
    copy = clw_malloc(len + 1);
    if (copy == NULL)
        goto fail;
    memcpy(copy, payload, len);
    copy[len] = '\0';
    sc.s = copy;
    sc.len = len;
    if (json_check(&sc) != 0) {
        note(v, R_NOT_JSON, "invalid JSON at byte %zu: %s", sc.pos, sc.why);
        goto done;
    }
    /* len + 1 includes the terminator: cJSON's require_null_terminated then rejects anything
     * after the value. After json_check cJSON only fails when out of memory; that is reported
     * as NotJson rather than -1 so a hostile record can never stall the worker. */
    root = cJSON_ParseWithLengthOpts(copy, len + 1, NULL, 1);
    if (root == NULL) {
        note(v, R_NOT_JSON, "JSON parser failed");
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        note(v, R_NOT_OBJECT, "value is a JSON %s, not an object",
             cJSON_IsArray(root)    ? "array"
             : cJSON_IsString(root) ? "string"
             : cJSON_IsNumber(root) ? "number"
             : cJSON_IsNull(root)   ? "null"
                                    : "boolean");
        goto done;
    }
    if (take_fields(req, v, root, default_region, max_instances) != 0)
        goto fail;
done:
    rc = 0;
fail:
    cJSON_Delete(root);
    free(copy);
    return rc;
}

int clw_request_parse(struct clw_request *req, const void *payload, size_t len,
                      const char *default_request_id, const struct clw_request_limits *lim)
{
    struct verdict v = {.rank = R_NONE};
    const char *default_region = lim != NULL ? lim->default_region : NULL;

    memset(req, 0, sizeof(*req));
    /* An unset or malformed default counts as none: it goes into signed calls. */
    if (default_region != NULL && !clw_request_valid_region(default_region))
        default_region = NULL;
    if (decode(req, &v, payload, len, lim, default_region) != 0)
        goto fail;
    if (v.rank != R_NONE) {
        /* Only fields carried validly stay: an invalid request made no call, so it has no
         * region unless it named a valid one itself (contract section 4). */
        if (v.region_defaulted) {
            free(req->region);
            req->region = NULL;
        }
        req->reason = reason_names[v.rank];
        req->detail = dup_s(v.detail);
        if (req->detail == NULL)
            goto fail;
    }
    req->valid = v.rank == R_NONE;
    if (req->request_id == NULL) {
        req->request_id = dup_s(default_request_id != NULL ? default_request_id : "");
        if (req->request_id == NULL)
            goto fail;
    }
    return 0;
fail:
    clw_request_free(req);
    return -1;
}

void clw_request_free(struct clw_request *req)
{
    if (req == NULL)
        return;
    free(req->detail);
    free(req->request_id);
    free(req->raw_request_id);
    free(req->region);
    free(req->vpc_id);
    free_ids(req->instance_ids, req->n_instances);
    memset(req, 0, sizeof(*req));
}
