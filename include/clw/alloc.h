/* Allocation through one door for the worker's own paths (intake, scheduling, publishing,
 * timers, offsets): a test can make any one of them fail to prove that no allocation failure
 * commits an offset past an unfinished record. In production the hook is unset: one
 * predictable branch per allocation. Not for use across threads while a hook is set. */
#ifndef CLW_ALLOC_H
#define CLW_ALLOC_H

#include <stddef.h>

/* Called before every allocation below while set; a non-zero answer makes it fail. */
typedef int (*clw_alloc_fail_fn)(void *arg);
void clw_alloc_set_fail_hook(clw_alloc_fail_fn fn, void *arg);

void *clw_malloc(size_t n);
void *clw_calloc(size_t n, size_t size);
void *clw_realloc(void *p, size_t n);
char *clw_strdup(const char *s);
char *clw_strndup(const char *s, size_t n);

#endif
