/* C error-path test of the promptist C API: every bad input gets its documented status code and a
 * non-empty message, never a crash; every object is freed (run under valgrind by tests/c/run.sh).
 *
 * Usage: test_errors GOOD_BUNDLE MISSING_FILE_BUNDLE CORRUPT_FILE_BUNDLE
 *   GOOD_BUNDLE          a valid bundle (e.g. from `promptist make-tiny`)
 *   MISSING_FILE_BUNDLE  a copy of it with one listed file deleted
 *   CORRUPT_FILE_BUNDLE  a copy of it with one listed file's bytes changed
 * Exit status 0 when every check passes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promptist.h"

static int failures = 0;
static int checks = 0;

/* Check that `status` is `expected` and that `err` carries the same code and a non-empty message;
 * frees `err`. */
static void expect(const char *what, promptist_status status, promptist_error *err, promptist_status expected) {
    checks++;
    int ok = status == expected;
    if (expected != PROMPTIST_STATUS_OK) {
        ok = ok && err != NULL && promptist_error_code(err) == expected && promptist_error_message(err) != NULL &&
             strlen(promptist_error_message(err)) > 0;
    } else {
        ok = ok && err == NULL;
    }
    fprintf(stderr, "%s %-44s status %s (%d), expected %s: %s\n", ok ? "ok  " : "FAIL", what, promptist_status_name(status),
            (int)status, promptist_status_name(expected), err ? promptist_error_message(err) : "(no error object)");
    if (!ok) failures++;
    promptist_error_free(err);
}

static void check(const char *what, int cond) {
    checks++;
    fprintf(stderr, "%s %s\n", cond ? "ok  " : "FAIL", what);
    if (!cond) failures++;
}

static void test_without_bundle(const char *good) {
    promptist_error *err = NULL;
    promptist_engine *engine = (promptist_engine *)0x1; /* must be reset to NULL on failure */
    promptist_engine_options eo;
    promptist_optimize_options oo;
    promptist_optimize_result *result = NULL;
    promptist_status s;

    check("promptist_version is not empty", strlen(promptist_version()) > 0);
    check("ABI version of header and library agree", promptist_abi_version() == PROMPTIST_ABI_VERSION);
    check("status name", strcmp(promptist_status_name(PROMPTIST_STATUS_BUNDLE_CHECKSUM), "BUNDLE_CHECKSUM") == 0);
    check("unknown status name", strcmp(promptist_status_name(1000), "UNKNOWN") == 0);

    /* The free functions and accessors accept NULL. */
    promptist_engine_free(NULL);
    promptist_optimize_result_free(NULL);
    promptist_error_free(NULL);
    check("NULL result count is 0", promptist_optimize_result_count(NULL) == 0);
    check("NULL result text is NULL", promptist_optimize_result_text(NULL, 0) == NULL);
    check("NULL result score is NaN", isnan(promptist_optimize_result_score(NULL, 0)));
    check("NULL error code is NULL_ARGUMENT", promptist_error_code(NULL) == PROMPTIST_STATUS_NULL_ARGUMENT);
    check("NULL error message is NULL", promptist_error_message(NULL) == NULL);

    s = promptist_engine_options_init(NULL, sizeof eo);
    check("engine_options_init(NULL) is NULL_ARGUMENT", s == PROMPTIST_STATUS_NULL_ARGUMENT);
    s = promptist_engine_options_init(&eo, 4);
    check("engine_options_init(struct_size 4) is INVALID_OPTIONS", s == PROMPTIST_STATUS_INVALID_OPTIONS);
    s = promptist_optimize_options_init(&oo, sizeof oo);
    check("optimize_options_init", s == PROMPTIST_STATUS_OK && oo.struct_size == sizeof oo && oo.num_beams == 8 &&
                                       oo.max_new_tokens == 75 && oo.length_penalty == -1.0f);

    s = promptist_engine_open(NULL, NULL, &engine, &err);
    expect("engine_open(bundle_path NULL)", s, err, PROMPTIST_STATUS_NULL_ARGUMENT);
    check("engine_out reset to NULL on failure", engine == NULL);
    s = promptist_engine_open(good, NULL, NULL, &err);
    expect("engine_open(engine_out NULL)", s, err, PROMPTIST_STATUS_NULL_ARGUMENT);
    s = promptist_engine_open("/nonexistent/promptist-bundle", NULL, &engine, &err);
    expect("engine_open(non-existent path)", s, err, PROMPTIST_STATUS_BUNDLE_NOT_FOUND);
    s = promptist_engine_open("/tmp/\xff\xfe-bundle", NULL, &engine, &err);
    expect("engine_open(invalid UTF-8 path)", s, err, PROMPTIST_STATUS_INVALID_UTF8);

    promptist_engine_options_init(&eo, sizeof eo);
    /* A struct that ends before the first version's last field (a later field, cpu_matmul, was
     * appended since, so sizeof eo - 1 is a valid older size now). */
    eo.struct_size = offsetof(promptist_engine_options, skip_checksums);
    s = promptist_engine_open(good, &eo, &engine, &err);
    expect("engine_open(struct_size too small)", s, err, PROMPTIST_STATUS_INVALID_OPTIONS);
    promptist_engine_options_init(&eo, sizeof eo);
    eo.provider = 77;
    s = promptist_engine_open(good, &eo, &engine, &err);
    expect("engine_open(unknown provider)", s, err, PROMPTIST_STATUS_INVALID_OPTIONS);
    promptist_engine_free(engine);
    engine = NULL;

    s = promptist_optimize(NULL, "a cat", NULL, &result, &err);
    expect("optimize(engine NULL)", s, err, PROMPTIST_STATUS_NULL_ARGUMENT);
    check("result_out reset to NULL on failure", result == NULL);

    /* error_out may be NULL: the status alone is returned. */
    s = promptist_engine_open("/nonexistent/promptist-bundle", NULL, &engine, NULL);
    check("engine_open without error_out still returns the status", s == PROMPTIST_STATUS_BUNDLE_NOT_FOUND);
}

static void test_bad_bundles(const char *missing, const char *corrupt) {
    promptist_error *err = NULL;
    promptist_engine *engine = NULL;
    promptist_status s = promptist_engine_open(missing, NULL, &engine, &err);
    expect("engine_open(bundle with a missing file)", s, err, PROMPTIST_STATUS_BUNDLE_INVALID);
    promptist_engine_free(engine);
    engine = NULL;
    s = promptist_engine_open(corrupt, NULL, &engine, &err);
    expect("engine_open(bundle with a corrupt file)", s, err, PROMPTIST_STATUS_BUNDLE_CHECKSUM);
    promptist_engine_free(engine);
}

/* Counts its calls and cancels at the first one. */
static bool cancel_at_first_step(int32_t stage, size_t step, size_t total, void *user_data) {
    (void)stage;
    (void)step;
    (void)total;
    int *calls = user_data;
    (*calls)++;
    return false;
}

static void test_with_engine(const char *good) {
    promptist_error *err = NULL;
    promptist_engine *engine = NULL;
    promptist_optimize_result *result = NULL;
    promptist_optimize_options oo;
    promptist_status s = promptist_engine_open(good, NULL, &engine, &err);
    expect("engine_open(good bundle)", s, err, PROMPTIST_STATUS_OK);
    if (engine == NULL) return;

    s = promptist_optimize(engine, NULL, NULL, &result, &err);
    expect("optimize(prompt NULL)", s, err, PROMPTIST_STATUS_NULL_ARGUMENT);
    s = promptist_optimize(engine, "a cat", NULL, NULL, &err);
    expect("optimize(result_out NULL)", s, err, PROMPTIST_STATUS_NULL_ARGUMENT);
    s = promptist_optimize(engine, "a \xc3\x28 cat", NULL, &result, &err);
    expect("optimize(invalid UTF-8 prompt)", s, err, PROMPTIST_STATUS_INVALID_UTF8);
    s = promptist_optimize(engine, "  \n\t ", NULL, &result, &err);
    expect("optimize(empty prompt)", s, err, PROMPTIST_STATUS_EMPTY_PROMPT);
    s = promptist_optimize(engine, "", NULL, &result, &err);
    expect("optimize(zero-length prompt)", s, err, PROMPTIST_STATUS_EMPTY_PROMPT);

    /* A prompt far longer than any GPT-2 context (n_ctx <= 1024 tokens). */
    size_t n = 40000;
    char *long_prompt = malloc(n + 1);
    for (size_t i = 0; i < n; i += 4) memcpy(long_prompt + i, "cat ", 4);
    long_prompt[n] = '\0';
    s = promptist_optimize(engine, long_prompt, NULL, &result, &err);
    expect("optimize(prompt longer than the context)", s, err, PROMPTIST_STATUS_PROMPT_TOO_LONG);
    free(long_prompt);

    promptist_optimize_options_init(&oo, sizeof oo);
    oo.num_beams = 0;
    s = promptist_optimize(engine, "a cat", &oo, &result, &err);
    expect("optimize(num_beams 0)", s, err, PROMPTIST_STATUS_INVALID_OPTIONS);
    promptist_optimize_options_init(&oo, sizeof oo);
    oo.struct_size = 8;
    s = promptist_optimize(engine, "a cat", &oo, &result, &err);
    expect("optimize(struct_size 8)", s, err, PROMPTIST_STATUS_INVALID_OPTIONS);
    promptist_optimize_options_init(&oo, sizeof oo);
    oo.strategy = 99;
    s = promptist_optimize(engine, "a cat", &oo, &result, &err);
    expect("optimize(unknown strategy)", s, err, PROMPTIST_STATUS_INVALID_OPTIONS);
    promptist_optimize_options_init(&oo, sizeof oo);
    oo.strategy = PROMPTIST_STRATEGY_SAMPLE;
    oo.temperature = 0.0f;
    s = promptist_optimize(engine, "a cat", &oo, &result, &err);
    expect("optimize(temperature 0)", s, err, PROMPTIST_STATUS_INVALID_OPTIONS);
    check("result_out stays NULL after failures", result == NULL);

    /* Cancellation: by the progress callback, and by the cancel flag. */
    int calls = 0;
    promptist_optimize_options_init(&oo, sizeof oo);
    oo.max_new_tokens = 20;
    oo.num_beams = 2;
    oo.progress = cancel_at_first_step;
    oo.user_data = &calls;
    s = promptist_optimize(engine, "a cat", &oo, &result, &err);
    expect("optimize(progress callback returns false)", s, err, PROMPTIST_STATUS_CANCELLED);
    check("progress callback ran once, then the call stopped", calls == 1);
    int32_t flag = 1;
    promptist_optimize_options_init(&oo, sizeof oo);
    oo.cancel_flag = &flag;
    s = promptist_optimize(engine, "a cat", &oo, &result, &err);
    expect("optimize(cancel flag set)", s, err, PROMPTIST_STATUS_CANCELLED);

    /* A good call after the failures still works, and its result reads back. */
    promptist_optimize_options_init(&oo, sizeof oo);
    oo.max_new_tokens = 8;
    oo.num_beams = 2;
    oo.num_return_sequences = 2;
    s = promptist_optimize(engine, "a cat", &oo, &result, &err);
    expect("optimize(good call, 2 beams, 8 tokens)", s, err, PROMPTIST_STATUS_OK);
    check("good call returns 2 candidates", promptist_optimize_result_count(result) == 2);
    check("candidate text is not NULL", promptist_optimize_result_text(result, 0) != NULL);
    check("out-of-range text is NULL", promptist_optimize_result_text(result, 2) == NULL);
    check("out-of-range score is NaN", isnan(promptist_optimize_result_score(result, 2)));
    check("beam search uses no seed", !promptist_optimize_result_seed(result, NULL));
    check("provider is CPU", promptist_optimize_result_provider(result) == PROMPTIST_PROVIDER_CPU);
    promptist_optimize_result_free(result);
    promptist_engine_free(engine);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s GOOD_BUNDLE MISSING_FILE_BUNDLE CORRUPT_FILE_BUNDLE\n", argv[0]);
        return 2;
    }
    test_without_bundle(argv[1]);
    test_bad_bundles(argv[2], argv[3]);
    test_with_engine(argv[1]);
    fprintf(stderr, "%d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
