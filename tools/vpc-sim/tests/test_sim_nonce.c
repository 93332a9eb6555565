/* vpc-sim unit tests: replay protection (nonce memory, expiry, growth). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sim_nonce.h"

struct nonce_step {
    const char *name;
    uint32_t cred;
    uint64_t nonce;
    int64_t now;
    int64_t expires;
    bool fresh;
};

/* Steps run in order against one store. */
static const struct nonce_step steps[] = {
    {"first use", 0, 42, 1000, 1300, true},
    {"reuse within window", 0, 42, 1100, 1400, false},
    {"same nonce, other key", 1, 42, 1100, 1400, true},
    {"other nonce", 0, 43, 1100, 1400, true},
    {"reuse on the last second", 0, 42, 1300, 1600, false},
    {"reuse after expiry", 0, 42, 1301, 1601, true},
    {"and that use is remembered", 0, 42, 1302, 1602, false},
};

static void test_steps(void **state)
{
    struct clw_sim_nonces nonces = {0};

    (void)state;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        const struct nonce_step *s = &steps[i];
        bool fresh = clw_sim_nonces_use(&nonces, s->cred, s->nonce, s->now, s->expires);

        if (fresh != s->fresh)
            fail_msg("%s: fresh=%d, want %d", s->name, fresh, s->fresh);
    }
    clw_sim_nonces_free(&nonces);
}

static void test_growth_keeps_everything(void **state)
{
    struct clw_sim_nonces nonces = {0};

    (void)state;
    for (uint64_t n = 1; n <= 50000; n++)
        assert_true(clw_sim_nonces_use(&nonces, 0, n * 7919, 10, 100));
    assert_int_equal(nonces.count, 50000);
    for (uint64_t n = 1; n <= 50000; n += 97)
        assert_false(clw_sim_nonces_use(&nonces, 0, n * 7919, 20, 110));
    /* Everything expired: the store drains as time passes. */
    assert_true(clw_sim_nonces_use(&nonces, 0, 1, 200, 500));
    assert_int_equal(nonces.count, 1);
    clw_sim_nonces_clear(&nonces);
    assert_true(clw_sim_nonces_use(&nonces, 0, 1, 200, 500));
    clw_sim_nonces_free(&nonces);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_growth_keeps_everything),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
