/* Allocation through one door, with a failure hook for fault-injection tests. */
#include "clw/alloc.h"

#include <stdlib.h>
#include <string.h>

static clw_alloc_fail_fn fail_fn;
static void *fail_arg;

void clw_alloc_set_fail_hook(clw_alloc_fail_fn fn, void *arg)
{
    fail_fn = fn;
    fail_arg = arg;
}

static int refused(void)
{
    return fail_fn != NULL && fail_fn(fail_arg);
}

void *clw_malloc(size_t n)
{
    return refused() ? NULL : malloc(n);
}

void *clw_calloc(size_t n, size_t size)
{
    return refused() ? NULL : calloc(n, size);
}

void *clw_realloc(void *p, size_t n)
{
    return refused() ? NULL : realloc(p, n);
}

char *clw_strdup(const char *s)
{
    return refused() ? NULL : strdup(s);
}

char *clw_strndup(const char *s, size_t n)
{
    return refused() ? NULL : strndup(s, n);
}
