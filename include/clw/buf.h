/* Growable byte buffer used by the string builders (string to sign, query, JSON lines). */
#ifndef CLW_BUF_H
#define CLW_BUF_H

#include <stddef.h>

/* Owns data (malloc'd, always NUL-terminated once anything was appended). A zeroed struct is an
 * empty buffer. On allocation failure the buffer is marked failed and further appends are
 * ignored; check clw_buf_failed() once at the end. */
struct clw_buf {
    char *data;
    size_t len;
    size_t cap;
    int failed;
};

void clw_buf_append(struct clw_buf *b, const void *p, size_t n);
void clw_buf_puts(struct clw_buf *b, const char *s);
void clw_buf_putc(struct clw_buf *b, char c);
void clw_buf_printf(struct clw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int clw_buf_failed(const struct clw_buf *b);
/* Hands the data to the caller (who frees it) and resets the buffer. NULL if failed. */
char *clw_buf_take(struct clw_buf *b, size_t *len);
void clw_buf_free(struct clw_buf *b);

#endif
