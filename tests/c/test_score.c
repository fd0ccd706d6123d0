/* C test of the promptist score API (promptist_score, promptist_score_many, promptist_best_of_n):
 * a successful score with images, every bad input with its documented status and a message,
 * NOT_IN_BUNDLE for a bundle without score components (optimize still works there), and cancel
 * mid-run (cancel flag set by the progress callback after denoising step 1, progress returning
 * false, flag set before the call). Run under valgrind by tests/c/run_score.sh: no leak on any path.
 *
 * Usage: test_score SCORE_BUNDLE POLICY_ONLY_BUNDLE */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promptist.h"

static int failures = 0;

static void expect(const char *what, promptist_status status, promptist_error *err, promptist_status expected) {
    int ok = status == expected;
    if (expected != PROMPTIST_STATUS_OK) {
        ok = ok && err != NULL && promptist_error_code(err) == expected && strlen(promptist_error_message(err)) > 0;
    } else {
        ok = ok && err == NULL;
    }
    fprintf(stderr, "%s %-40s %s, expected %s: %s\n", ok ? "ok  " : "FAIL", what, promptist_status_name(status),
            promptist_status_name(expected), err ? promptist_error_message(err) : "-");
    if (!ok) failures++;
    promptist_error_free(err);
}

/* Evaluate the call first, then check it (C leaves argument evaluation order unspecified). */
#define EXPECT(what, call, expected)              \
    do {                                          \
        promptist_status status_ = (call);        \
        expect((what), status_, err, (expected)); \
        err = NULL;                               \
    } while (0)

static void check(const char *what, int cond) {
    fprintf(stderr, "%s %s\n", cond ? "ok  " : "FAIL", what);
    if (!cond) failures++;
}

static promptist_score_options small_options(void) {
    promptist_score_options o;
    promptist_score_options_init(&o, sizeof o);
    /* Small enough for valgrind: 32x32 images (4x4 latents), 2 steps, 1 image per prompt. */
    o.width = 32;
    o.height = 32;
    o.steps = 2;
    o.images_per_prompt = 1;
    return o;
}

struct progress_state {
    int denoise_calls;
    int cancel_after; /* set the cancel flag once this many denoising steps are reported (0: never) */
    int refuse_at;    /* return false at this denoising step (0: never) */
    int32_t flag;
};

static bool on_progress(int32_t stage, size_t step, size_t total, void *user_data) {
    struct progress_state *st = user_data;
    (void)total;
    if (stage == PROMPTIST_STAGE_DENOISE) {
        st->denoise_calls++;
        if (st->cancel_after && st->denoise_calls == st->cancel_after) __atomic_store_n(&st->flag, 1, __ATOMIC_RELEASE);
        if (st->refuse_at && (int)step == st->refuse_at) return false;
    }
    return true;
}

static void test_score_ok(promptist_engine *engine) {
    promptist_score_options o = small_options();
    o.return_images = 1;
    o.seed = 42;
    o.images_per_prompt = 2;
    promptist_score_result *r = NULL;
    promptist_error *err = NULL;
    EXPECT("score", promptist_score(engine, "a cat", "a cat, highly detailed, artstation", &o, &r, &err), PROMPTIST_STATUS_OK);
    check("one candidate", promptist_score_result_count(r) == 1);
    check("prompt text kept", r && strcmp(promptist_score_result_prompt(r, 0), "a cat, highly detailed, artstation") == 0);
    double reward = promptist_score_result_reward(r, 0);
    double parts = promptist_score_result_aesthetic(r, 0) - promptist_score_result_user_aesthetic(r) + promptist_score_result_relevance(r, 0);
    check("reward = aesthetic gain + relevance", isfinite(reward) && fabs(reward - parts) < 1e-9);
    check("per-image similarity in [-1, 1]", fabs(promptist_score_result_similarity(r, 0, 1)) <= 1.0);
    check("out of range is NaN", isnan(promptist_score_result_similarity(r, 0, 2)) && isnan(promptist_score_result_reward(r, 1)));
    check("seed and images per prompt", promptist_score_result_seed(r) == 42 && promptist_score_result_images_per_prompt(r) == 2);
    check("random weights reported", promptist_score_result_random_weights(r));
    uint32_t w = 0, h = 0;
    const uint8_t *px = promptist_score_result_image(r, 0, 1, &w, &h);
    check("candidate image 32x32 RGB8", px != NULL && w == 32 && h == 32);
    unsigned long sum = 0;
    for (size_t i = 0; px && i < (size_t)w * h * 3; i++) sum += px[i]; /* valgrind: every byte initialised */
    check("user image", promptist_score_result_user_image(r, 1, &w, &h) != NULL && promptist_score_result_user_image(r, 2, &w, &h) == NULL && w == 0);
    fprintf(stderr, "     reward %.6f (pixel sum %lu)\n", reward, sum);
    promptist_score_result_free(r);

    /* Several candidates in one call, then best-of-n. */
    const char *cands[] = {"a dog, 8k", "a dog in the snow, concept art"};
    o.images_per_prompt = 1;
    o.return_images = 0;
    r = NULL;
    EXPECT("score_many", promptist_score_many(engine, "a dog", cands, 2, &o, &r, &err), PROMPTIST_STATUS_OK);
    check("two candidates", promptist_score_result_count(r) == 2 && strcmp(promptist_score_result_prompt(r, 1), cands[1]) == 0);
    promptist_score_result_free(r);

    promptist_optimize_options oo;
    promptist_optimize_options_init(&oo, sizeof oo);
    oo.num_beams = 2;
    oo.num_return_sequences = 2;
    oo.max_new_tokens = 4;
    r = NULL;
    EXPECT("best_of_n", promptist_best_of_n(engine, "a dog", &oo, &o, &r, &err), PROMPTIST_STATUS_OK);
    size_t n = promptist_score_result_count(r);
    int sorted = n >= 1;
    for (size_t i = 1; i < n; i++) sorted = sorted && promptist_score_result_reward(r, i - 1) >= promptist_score_result_reward(r, i);
    check("best_of_n ranked by reward", sorted);
    promptist_score_result_free(r);
}

static void test_bad_input(promptist_engine *engine) {
    promptist_score_result *r = (promptist_score_result *)0x1;
    promptist_error *err = NULL;
    promptist_score_options o = small_options();
    o.width = 60;
    EXPECT("width not a multiple of 8", promptist_score(engine, "a", "b", &o, &r, &err), PROMPTIST_STATUS_INVALID_OPTIONS);
    check("result_out reset to NULL on failure", r == NULL);
    o = small_options();
    o.steps = 0;
    EXPECT("0 steps", promptist_score(engine, "a", "b", &o, &r, &err), PROMPTIST_STATUS_INVALID_OPTIONS);
    o = small_options();
    o.images_per_prompt = 0;
    EXPECT("0 images", promptist_score(engine, "a", "b", &o, &r, &err), PROMPTIST_STATUS_INVALID_OPTIONS);
    o = small_options();
    o.scheduler = 9;
    EXPECT("unknown scheduler", promptist_score(engine, "a", "b", &o, &r, &err), PROMPTIST_STATUS_INVALID_OPTIONS);
    o = small_options();
    o.struct_size = 4;
    EXPECT("struct_size too small", promptist_score(engine, "a", "b", &o, &r, &err), PROMPTIST_STATUS_INVALID_OPTIONS);
    o = small_options();
    EXPECT("NULL candidate", promptist_score(engine, "a", NULL, &o, &r, &err), PROMPTIST_STATUS_NULL_ARGUMENT);
    EXPECT("NULL engine", promptist_score(NULL, "a", "b", &o, &r, &err), PROMPTIST_STATUS_NULL_ARGUMENT);
    EXPECT("NULL result_out", promptist_score(engine, "a", "b", &o, NULL, &err), PROMPTIST_STATUS_NULL_ARGUMENT);
    const char *none[] = {"x"};
    EXPECT("0 candidates", promptist_score_many(engine, "a", none, 0, &o, &r, &err), PROMPTIST_STATUS_INVALID_OPTIONS);
    EXPECT("empty user prompt", promptist_score(engine, "   ", "b", &o, &r, &err), PROMPTIST_STATUS_EMPTY_PROMPT);
    EXPECT("bad UTF-8", promptist_score(engine, "a", "\xff\xfe", &o, &r, &err), PROMPTIST_STATUS_INVALID_UTF8);
    check("accessors accept NULL", promptist_score_result_count(NULL) == 0 && isnan(promptist_score_result_reward(NULL, 0)) &&
                                      promptist_score_result_image(NULL, 0, 0, NULL, NULL) == NULL);
    promptist_score_result_free(NULL);
}

static void test_cancel(promptist_engine *engine) {
    promptist_score_result *r = NULL;
    promptist_error *err = NULL;
    struct progress_state st = {0, 1, 0, 0};
    promptist_score_options o = small_options();
    o.progress = on_progress;
    o.user_data = &st;
    o.cancel_flag = &st.flag;
    /* Another party sets the flag after step 1: the call stops at the next check (within one step). */
    EXPECT("cancel flag set mid-run", promptist_score(engine, "a bird", "a bird, 8k", &o, &r, &err), PROMPTIST_STATUS_CANCELLED);
    check("stopped within one step of the flag", st.denoise_calls == 1 && r == NULL);
    struct progress_state st2 = {0, 0, 2, 0};
    o.user_data = &st2;
    o.cancel_flag = NULL;
    EXPECT("progress returns false", promptist_score(engine, "a bird", "a bird, 8k", &o, &r, &err), PROMPTIST_STATUS_CANCELLED);
    check("stopped at the refusing step", st2.denoise_calls == 2);
    st2.denoise_calls = 0;
    int32_t set = 1;
    o.progress = NULL;
    o.cancel_flag = &set;
    EXPECT("cancel flag set before the call", promptist_score(engine, "a bird", "a bird, 8k", &o, &r, &err), PROMPTIST_STATUS_CANCELLED);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s SCORE_BUNDLE POLICY_ONLY_BUNDLE\n", argv[0]);
        return 2;
    }
    promptist_engine *engine = NULL;
    promptist_error *err = NULL;
    EXPECT("open score bundle", promptist_engine_open(argv[1], NULL, &engine, &err), PROMPTIST_STATUS_OK);
    if (!engine) return 1;
    check("can score", promptist_engine_can_score(engine));
    test_score_ok(engine);
    test_bad_input(engine);
    test_cancel(engine);
    promptist_engine_free(engine);

    engine = NULL;
    EXPECT("open policy-only bundle", promptist_engine_open(argv[2], NULL, &engine, &err), PROMPTIST_STATUS_OK);
    if (!engine) return 1;
    check("cannot score", !promptist_engine_can_score(engine));
    promptist_score_result *r = NULL;
    promptist_score_options o = small_options();
    EXPECT("score without score components", promptist_score(engine, "a cat", "a cat, 8k", &o, &r, &err), PROMPTIST_STATUS_NOT_IN_BUNDLE);
    promptist_optimize_options oo;
    promptist_optimize_options_init(&oo, sizeof oo);
    oo.max_new_tokens = 4;
    promptist_optimize_result *or = NULL;
    EXPECT("optimize still works", promptist_optimize(engine, "a cat", &oo, &or, &err), PROMPTIST_STATUS_OK);
    promptist_optimize_result_free(or);
    promptist_engine_free(engine);

    fprintf(stderr, "test_score: %s\n", failures ? "FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
