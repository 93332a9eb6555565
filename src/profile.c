/* The credentials profile file: a small INI reader that keeps one section's three keys. */
#include "clw/profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/sign.h"

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* The trimmed span [*b, *e) of [b, e). */
static void trim(const char **b, const char **e)
{
    while (*b < *e && is_blank(**b))
        (*b)++;
    while (*e > *b && is_blank((*e)[-1]))
        (*e)--;
}

static int span_is(const char *b, const char *e, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(e - b) == n && memcmp(b, word, n) == 0;
}

static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    clw_sign_wipe(s, strlen(s));
    free(s);
}

/* Replaces *slot with a copy of [b, e). Returns 0, -1 when out of memory. */
static int keep(char **slot, const char *b, const char *e)
{
    size_t n = (size_t)(e - b);
    char *copy = malloc(n + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, b, n);
    copy[n] = '\0';
    wipe_free(*slot);
    *slot = copy;
    return 0;
}

void clw_profile_free(struct clw_profile *p)
{
    if (p == NULL)
        return;
    wipe_free(p->secret_id);
    wipe_free(p->secret_key);
    wipe_free(p->token);
    memset(p, 0, sizeof(*p));
}

static int fail(struct clw_profile *out, char *err, size_t errlen, size_t line, const char *why)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "line %zu: %s", line, why);
    clw_profile_free(out);
    return -1;
}

int clw_profile_parse(const char *text, size_t len, const char *section, struct clw_profile *out,
                      char *err, size_t errlen)
{
    int found = 0;
    int in_section = 0;
    size_t line = 0;
    if (len == 0)
        return 0; /* an empty file has no section */
    if (text == NULL)
        return fail(out, err, errlen, 0, "no text");
    if (len > CLW_PROFILE_MAX_BYTES)
        return fail(out, err, errlen, 0, "larger than 64 KiB");
    const char *p = text;
    const char *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *b = p;
        const char *e = nl != NULL ? nl : end;
        p = nl != NULL ? nl + 1 : end;
        line++;
        if (memchr(b, '\0', (size_t)(e - b)) != NULL)
            return fail(out, err, errlen, line, "a NUL byte");
        trim(&b, &e);
        if (b == e || *b == '#' || *b == ';')
            continue;
        if (*b == '[') {
            if (e[-1] != ']' || e - b < 3)
                return fail(out, err, errlen, line, "a section must read [name]");
            const char *nb = b + 1;
            const char *ne = e - 1;
            trim(&nb, &ne);
            if (nb == ne || memchr(nb, '[', (size_t)(ne - nb)) ||
                memchr(nb, ']', (size_t)(ne - nb)))
                return fail(out, err, errlen, line, "a section must read [name]");
            in_section = span_is(nb, ne, section);
            found |= in_section;
            continue;
        }
        const char *eq = memchr(b, '=', (size_t)(e - b));
        if (eq == NULL)
            return fail(out, err, errlen, line, "expected key = value");
        const char *kb = b;
        const char *ke = eq;
        const char *vb = eq + 1;
        const char *ve = e;
        trim(&kb, &ke);
        trim(&vb, &ve);
        if (kb == ke)
            return fail(out, err, errlen, line, "a key is missing before '='");
        if (!in_section)
            continue;
        char **slot = span_is(kb, ke, "secret_id")    ? &out->secret_id
                      : span_is(kb, ke, "secret_key") ? &out->secret_key
                      : span_is(kb, ke, "token")      ? &out->token
                                                      : NULL;
        if (slot != NULL && keep(slot, vb, ve) != 0)
            return fail(out, err, errlen, line, "out of memory");
    }
    if (!found)
        clw_profile_free(out);
    return found;
}
