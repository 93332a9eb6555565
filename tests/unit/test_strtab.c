/* Unit tests of the string-keyed intrusive hash table: find, insert, remove, growth and
 * shrinking, remove_if. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "clw/strtab.h"

struct entry {
    struct clw_strtab_node node;
    int value;
    char key[32];
};

static struct entry *entry_new(const char *key, int value)
{
    struct entry *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->node.key = e->key;
    e->node.hash = clw_strtab_hash(key);
    e->value = value;
    return e;
}

static struct entry *find(const struct clw_strtab *t, const char *key)
{
    return (struct entry *)clw_strtab_find(t, key, clw_strtab_hash(key));
}

static int disposed;

static void dispose(struct clw_strtab_node *n)
{
    disposed++;
    free(n);
}

struct op {
    char kind; /* 'i' insert, 'r' remove, 'f' find (value or -1 when absent) */
    const char *key;
    int value;
};

static const struct {
    const char *name;
    struct op ops[8];
    size_t count;
} cases[] = {
    {"insert then find", {{'i', "ins-a", 1}, {'f', "ins-a", 1}, {'f', "ins-b", -1}}, 1},
    {"two keys", {{'i', "ins-a", 1}, {'i', "ins-b", 2}, {'f', "ins-b", 2}, {'f', "ins-a", 1}}, 2},
    {"remove one",
     {{'i', "ins-a", 1},
      {'i', "ins-b", 2},
      {'r', "ins-a", 0},
      {'f', "ins-a", -1},
      {'f', "ins-b", 2}},
     1},
    {"prefix is another key", {{'i', "ins-ab", 1}, {'f', "ins-a", -1}, {'f', "ins-abc", -1}}, 1},
    {"empty key", {{'i', "", 7}, {'f', "", 7}}, 1},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct clw_strtab t;
        assert_int_equal(clw_strtab_init(&t, 4), 0);
        for (size_t i = 0; i < 8 && cases[c].ops[i].kind != 0; i++) {
            const struct op *op = &cases[c].ops[i];
            if (op->kind == 'i') {
                clw_strtab_insert(&t, &entry_new(op->key, op->value)->node);
            } else if (op->kind == 'r') {
                struct entry *e = find(&t, op->key);
                assert_non_null(e);
                clw_strtab_remove(&t, &e->node);
                free(e);
            } else {
                struct entry *e = find(&t, op->key);
                if (op->value < 0 && e != NULL)
                    fail_msg("%s: %s found", cases[c].name, op->key);
                if (op->value >= 0 && (e == NULL || e->value != op->value))
                    fail_msg("%s: %s not found with %d", cases[c].name, op->key, op->value);
            }
        }
        assert_int_equal(t.count, cases[c].count);
        disposed = 0;
        clw_strtab_fini(&t, dispose);
        assert_int_equal(disposed, (int)cases[c].count);
    }
}

/* 50 000 keys grow the table; removing most shrinks it again; every key stays findable. */
static void test_grow_and_shrink(void **state)
{
    (void)state;
    enum { N = 50000 };
    struct clw_strtab t;
    static struct entry *all[N];
    char key[32];
    assert_int_equal(clw_strtab_init(&t, 8), 0);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "ins-%d", i);
        all[i] = entry_new(key, i);
        clw_strtab_insert(&t, &all[i]->node);
    }
    assert_true(t.nbuckets >= N);
    for (int i = 0; i < N; i += 997) {
        snprintf(key, sizeof(key), "ins-%d", i);
        assert_ptr_equal(find(&t, key), all[i]);
    }
    for (int i = 0; i < N - 10; i++) {
        clw_strtab_remove(&t, &all[i]->node);
        free(all[i]);
    }
    assert_int_equal(t.count, 10);
    assert_true(t.nbuckets <= 128);
    for (int i = N - 10; i < N; i++) {
        snprintf(key, sizeof(key), "ins-%d", i);
        assert_ptr_equal(find(&t, key), all[i]);
    }
    disposed = 0;
    clw_strtab_fini(&t, dispose);
    assert_int_equal(disposed, 10);
}

static int drop_odd(struct clw_strtab_node *n, void *arg)
{
    (void)arg;
    return ((struct entry *)n)->value % 2 != 0;
}

static void test_remove_if(void **state)
{
    (void)state;
    struct clw_strtab t;
    char key[32];
    assert_int_equal(clw_strtab_init(&t, 4), 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        clw_strtab_insert(&t, &entry_new(key, i)->node);
    }
    disposed = 0;
    clw_strtab_remove_if(&t, drop_odd, NULL, dispose);
    assert_int_equal(disposed, 500);
    assert_int_equal(t.count, 500);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        struct entry *e = find(&t, key);
        if (i % 2 != 0)
            assert_null(e);
        else
            assert_true(e != NULL && e->value == i);
    }
    clw_strtab_fini(&t, dispose);
}

static void test_hash_known_values(void **state)
{
    (void)state;
    /* The finalised FNV-1a spreads one-byte differences over the low bits. */
    assert_int_not_equal(clw_strtab_hash("ins-1") & 63, clw_strtab_hash("ins-2") & 63);
    assert_int_equal(clw_strtab_hash("ins-1"), clw_strtab_hash("ins-1"));
    assert_int_not_equal(clw_strtab_hash(""), clw_strtab_hash("a"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_grow_and_shrink),
        cmocka_unit_test(test_remove_if),
        cmocka_unit_test(test_hash_known_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
