/* Unit tests for the intrusive list: pushes at both ends, removal from the head, the middle and
 * the tail, and finding the object of a link. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "clw/dlist.h"

struct item {
    int value;
    struct clw_dlink link;
};

/* The values of l from head to tail into out; returns the count, checking the back links. */
static size_t values(const struct clw_dlist *l, int *out)
{
    size_t n = 0;
    const struct clw_dlink *prev = NULL;
    for (const struct clw_dlink *k = l->head; k != NULL; prev = k, k = k->next) {
        assert_ptr_equal(k->prev, prev);
        out[n++] = CLW_DLIST_ITEM(k, const struct item, link)->value;
    }
    assert_ptr_equal(l->tail, prev);
    assert_int_equal(l->len, n);
    return n;
}

static void test_push_and_remove(void **state)
{
    (void)state;
    struct item it[5];
    for (int i = 0; i < 5; i++)
        it[i] = (struct item){.value = i, .link = {NULL, NULL}};
    struct clw_dlist l = {0};
    int got[5];
    clw_dlist_push(&l, &it[2].link, 0);
    clw_dlist_push(&l, &it[3].link, 0);
    clw_dlist_push(&l, &it[1].link, 1);
    clw_dlist_push(&l, &it[0].link, 1);
    clw_dlist_push(&l, &it[4].link, 0);
    assert_int_equal(values(&l, got), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(got[i], i);
    clw_dlist_remove(&l, &it[2].link); /* the middle */
    clw_dlist_remove(&l, &it[0].link); /* the head */
    clw_dlist_remove(&l, &it[4].link); /* the tail */
    assert_int_equal(values(&l, got), 2);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 3);
    assert_null(it[2].link.prev);
    assert_null(it[2].link.next);
    clw_dlist_remove(&l, &it[1].link);
    clw_dlist_remove(&l, &it[3].link);
    assert_int_equal(values(&l, got), 0);
    assert_null(l.head);
    /* A removed link can be pushed again. */
    clw_dlist_push(&l, &it[2].link, 1);
    assert_ptr_equal(CLW_DLIST_ITEM(l.head, struct item, link), &it[2]);
    assert_null(CLW_DLIST_ITEM((struct clw_dlink *)NULL, struct item, link));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_push_and_remove)};
    return cmocka_run_group_tests_name("dlist", tests, NULL, NULL);
}
