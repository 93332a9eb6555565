/* Growable byte buffer: appends never fail loudly, a failed flag is checked once at the end. */
#include "clw/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/alloc.h"

/* Makes room for n more bytes plus the terminating NUL. Returns 0, or -1 (buffer marked failed,
 * its data released) when the size overflows or memory runs out. */
static int buf_reserve(struct clw_buf *b, size_t n)
{
    size_t need;
    size_t cap;
    char *p;

    if (b->failed)
        return -1;
    if (n > SIZE_MAX - b->len - 1)
        goto fail;
    need = b->len + n + 1;
    if (b->data != NULL && need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    p = clw_realloc(b->data, cap);
    if (!p)
        goto fail;
    b->data = p;
    b->cap = cap;
    return 0;

fail:
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = 1;
    return -1;
}

void clw_buf_append(struct clw_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void clw_buf_puts(struct clw_buf *b, const char *s)
{
    clw_buf_append(b, s, strlen(s));
}

void clw_buf_putc(struct clw_buf *b, char c)
{
    clw_buf_append(b, &c, 1);
}

void clw_buf_printf(struct clw_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_list ap2;
    int n;

    if (b->failed)
        return;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    /* First try in the space already there; most calls fit. */
    if (buf_reserve(b, 0) != 0)
        goto out;
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    if (n < 0) {
        /* An encoding error: keep what was there, drop the partial output. */
        b->data[b->len] = '\0';
        goto out;
    }
    if ((size_t)n >= b->cap - b->len) {
        if (buf_reserve(b, (size_t)n) != 0)
            goto out;
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
    }
    b->len += (size_t)n;

out:
    va_end(ap2);
    va_end(ap);
}

int clw_buf_failed(const struct clw_buf *b)
{
    return b->failed;
}

char *clw_buf_take(struct clw_buf *b, size_t *len)
{
    char *p = NULL;

    if (len)
        *len = 0;
    if (!b->failed && !b->data)
        buf_reserve(b, 0); /* an empty buffer still hands out an empty string */
    if (b->failed)
        goto out;
    b->data[b->len] = '\0';
    p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;

out:
    free(b->data);
    memset(b, 0, sizeof(*b));
    return p;
}

void clw_buf_free(struct clw_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}
