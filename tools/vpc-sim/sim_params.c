/* vpc-sim: request parameters decoded from a query string or a urlencoded form body. */
#include "sim_params.h"

#include <stdlib.h>
#include <string.h>

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

/* Decodes len bytes of s into a new NUL-terminated string. Returns NULL on allocation failure
 * and sets *bad on a broken escape. */
static char *decode(const char *s, size_t len, int *bad)
{
    char *out = malloc(len + 1);
    size_t o = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;

            if (hi < 0 || lo < 0 || hi + lo == 0) { /* broken, or %00 */
                *bad = 1;
                break;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static void normalise_name(char *name)
{
    for (char *p = name; *p != '\0'; p++) {
        if (*p == '_')
            *p = '.';
    }
}

/* Takes ownership of name and value. */
static enum clw_sim_params_err append(struct clw_sim_params *params, char *name, char *value)
{
    enum clw_sim_params_err err = CLW_SIM_PARAMS_OK;

    normalise_name(name);
    if (name[0] == '\0') {
        err = CLW_SIM_PARAMS_BAD_ENCODING;
        goto fail;
    }
    if (clw_sim_params_get(params, name) != NULL) {
        err = CLW_SIM_PARAMS_DUPLICATE;
        goto fail;
    }
    if (params->count >= CLW_SIM_PARAMS_MAX) {
        err = CLW_SIM_PARAMS_TOO_MANY;
        goto fail;
    }
    if (params->count == params->cap) {
        size_t cap = params->cap == 0 ? 16 : params->cap * 2;
        struct clw_sim_param *items = realloc(params->items, cap * sizeof(*items));

        if (items == NULL) {
            err = CLW_SIM_PARAMS_NOMEM;
            goto fail;
        }
        params->items = items;
        params->cap = cap;
    }
    params->items[params->count].name = name;
    params->items[params->count].value = value;
    params->count++;
    return CLW_SIM_PARAMS_OK;

fail:
    free(name);
    free(value);
    return err;
}

enum clw_sim_params_err clw_sim_params_parse(struct clw_sim_params *params, const char *data,
                                             size_t len)
{
    size_t pos = 0;

    while (pos < len) {
        const char *seg = data + pos;
        const char *amp = memchr(seg, '&', len - pos);
        size_t seg_len = amp != NULL ? (size_t)(amp - seg) : len - pos;
        const char *eq = memchr(seg, '=', seg_len);
        size_t name_len = eq != NULL ? (size_t)(eq - seg) : seg_len;
        int bad = 0;
        char *name;
        char *value;
        enum clw_sim_params_err err;

        pos += seg_len + 1;
        if (seg_len == 0)
            continue;
        name = decode(seg, name_len, &bad);
        value = eq != NULL ? decode(eq + 1, seg_len - name_len - 1, &bad) : strdup("");
        if (name == NULL || value == NULL) {
            free(name);
            free(value);
            return CLW_SIM_PARAMS_NOMEM;
        }
        if (bad) {
            free(name);
            free(value);
            return CLW_SIM_PARAMS_BAD_ENCODING;
        }
        err = append(params, name, value);
        if (err != CLW_SIM_PARAMS_OK)
            return err;
    }
    return CLW_SIM_PARAMS_OK;
}

enum clw_sim_params_err clw_sim_params_add(struct clw_sim_params *params, const char *name,
                                           const char *value)
{
    char *n = strdup(name);
    char *v = strdup(value);

    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return CLW_SIM_PARAMS_NOMEM;
    }
    return append(params, n, v);
}

const char *clw_sim_params_get(const struct clw_sim_params *params, const char *name)
{
    for (size_t i = 0; i < params->count; i++) {
        if (strcmp(params->items[i].name, name) == 0)
            return params->items[i].value;
    }
    return NULL;
}

void clw_sim_params_free(struct clw_sim_params *params)
{
    for (size_t i = 0; i < params->count; i++) {
        free(params->items[i].name);
        free(params->items[i].value);
    }
    free(params->items);
    params->items = NULL;
    params->count = 0;
    params->cap = 0;
}

const char *clw_sim_params_strerror(enum clw_sim_params_err err)
{
    switch (err) {
    case CLW_SIM_PARAMS_OK:
        return "ok";
    case CLW_SIM_PARAMS_BAD_ENCODING:
        return "malformed parameter encoding";
    case CLW_SIM_PARAMS_DUPLICATE:
        return "duplicate parameter";
    case CLW_SIM_PARAMS_TOO_MANY:
        return "too many parameters";
    case CLW_SIM_PARAMS_NOMEM:
        return "out of memory";
    }
    return "unknown error";
}
