/* Unit tests replaying every fuzz seed and every fuzzer-found crash through the fuzz code. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The fuzz targets themselves, without their libFuzzer entry points, and the simulator's
 * decoder and signature check that fuzz_sim_params exercises (the test links the core library
 * only). */
#define CLW_FUZZ_NO_ENTRY
#include "../../fuzz/fuzz_answer.c"
#include "../../fuzz/fuzz_config.c"
#include "../../fuzz/fuzz_profile.c"
#include "../../fuzz/fuzz_request.c"
#include "../../fuzz/fuzz_sign.c"
#include "../../fuzz/fuzz_sim_params.c"
#include "../../tools/vpc-sim/sim_params.c"
#include "../../tools/vpc-sim/sim_sign.c"

#define CORPUS_DIR     CLW_TEST_DATA "/../../fuzz/corpus"
#define REGRESSION_DIR CLW_TEST_DATA "/regressions"

struct replay_case {
    const char *target; /* directory name under both roots */
    int (*run)(const uint8_t *data, size_t size);
};

static const struct replay_case cases[] = {
    {"fuzz_request", clw_fuzz_request},       {"fuzz_answer", clw_fuzz_answer},
    {"fuzz_config", clw_fuzz_config},         {"fuzz_sign", clw_fuzz_sign},
    {"fuzz_sim_params", clw_fuzz_sim_params}, {"fuzz_profile", clw_fuzz_profile},
};

static uint8_t *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    data = malloc((size_t)n + 1); /* + 1: malloc(0) may return NULL */
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return data;
}

/* Runs every regular file of root/target through run; returns how many there were (0 when the
 * directory does not exist). */
static size_t replay_dir(const char *root, const struct replay_case *c)
{
    char dir[1024];
    char path[2048];
    struct dirent *e;
    size_t count = 0;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/%s", root, c->target);
    d = opendir(dir);
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        uint8_t *data;
        size_t size;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        fprintf(stderr, "replay %s\n", path); /* names the input if an invariant aborts */
        data = read_all(path, &size);
        assert_int_equal(c->run(data, size), 0);
        free(data);
        count++;
    }
    closedir(d);
    return count;
}

static void test_replay(void **state)
{
    const struct replay_case *c = *state;

    /* The seeds must be there: an empty replay would pass vacuously. */
    assert_true(replay_dir(CORPUS_DIR, c) >= 5);
    (void)replay_dir(REGRESSION_DIR, c);
}

/* An input the parsers must survive, checked here so that the replay itself is known to run
 * the code: a request with a query injection is refused by the id grammar. */
static void test_injection_refused(void **state)
{
    static const char input[] = "\x20{\"vpcId\":\"vpc-1&Action=DetachClassicLinkVpc\","
                                "\"instanceIds\":[\"ins-1\"]}";
    struct clw_request_limits lim = {65536, 20, "ap-guangzhou"};
    struct clw_request req;

    (void)state;
    assert_int_equal(clw_fuzz_request((const uint8_t *)input, sizeof(input) - 1), 0);
    assert_int_equal(clw_request_parse(&req, input + 1, sizeof(input) - 2, "t:0:1", &lim), 0);
    assert_false(req.valid);
    assert_string_equal(req.reason, "BadVpcId");
    clw_request_free(&req);
}

int main(void)
{
    struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 1];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(test_replay, (void *)&cases[i]);
        tests[i].name = cases[i].target;
    }
    tests[i] = (struct CMUnitTest)cmocka_unit_test(test_injection_refused);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
