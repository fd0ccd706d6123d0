/* C test of the threading contract (docs/c-abi.md, "Threading") through the header alone:
 *  1. THREADS threads x CALLS calls on ONE engine, mixing promptist_optimize and promptist_score
 *     over four prompts: every call succeeds and equals the single-threaded result exactly
 *     (candidate texts byte for byte, rewards bit for bit);
 *  2. a cancel flag set from another thread while a 50-step score runs: the call returns
 *     CANCELLED and at most one denoising step is reported after the flag was set;
 *  3. engines opened (checksums skipped: the point is concurrency, not hashing), used and freed on
 *     OPENERS threads at once, twice each;
 *  4. promptist_engine_free after all that. Run under valgrind and AddressSanitizer by
 *     tests/c/run_threads.sh: no error and no leak on any of these paths.
 *
 * Usage: test_threads SCORE_BUNDLE THREADS CALLS OPENERS */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "promptist.h"

#define PROMPTS 4
static const char *prompts[PROMPTS] = {"a red fox", "portrait of a sailor", "a castle at dawn", "a bowl of fruit"};
static const char *candidates[PROMPTS] = {"a red fox, 8k", "portrait of a sailor, oil", "a castle at dawn, matte", "a bowl of fruit, still life"};

static promptist_engine *engine;
static const char *bundle;
static char *expected_text[PROMPTS];
static double expected_reward[PROMPTS];
static int calls_per_thread;
static int failures;

static void fail(const char *what, promptist_error *err) {
    fprintf(stderr, "FAIL %s: %s\n", what, err ? promptist_error_message(err) : "-");
    __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
    promptist_error_free(err);
}

static promptist_optimize_options optimize_options(void) {
    promptist_optimize_options o;
    promptist_optimize_options_init(&o, sizeof o);
    o.num_beams = 2;
    o.num_return_sequences = 2;
    o.max_new_tokens = 6;
    return o;
}

static promptist_score_options score_options(void) {
    promptist_score_options o;
    promptist_score_options_init(&o, sizeof o);
    o.width = 32;
    o.height = 32;
    o.steps = 2;
    o.images_per_prompt = 1;
    return o;
}

/* The candidates of one optimize call joined with '\n' (malloc'd), or NULL on failure. */
static char *optimize_text(promptist_engine *e, const char *prompt) {
    promptist_optimize_options o = optimize_options();
    promptist_optimize_result *r = NULL;
    promptist_error *err = NULL;
    if (promptist_optimize(e, prompt, &o, &r, &err) != PROMPTIST_STATUS_OK) {
        fail("optimize", err);
        return NULL;
    }
    size_t n = promptist_optimize_result_count(r), len = 1;
    for (size_t i = 0; i < n; i++) len += strlen(promptist_optimize_result_text(r, i)) + 1;
    char *s = calloc(len, 1);
    for (size_t i = 0; s && i < n; i++) {
        strcat(s, promptist_optimize_result_text(r, i));
        strcat(s, "\n");
    }
    promptist_optimize_result_free(r);
    return s;
}

static int score_reward(promptist_engine *e, int k, double *reward) {
    promptist_score_options o = score_options();
    promptist_score_result *r = NULL;
    promptist_error *err = NULL;
    if (promptist_score(e, prompts[k], candidates[k], &o, &r, &err) != PROMPTIST_STATUS_OK) {
        fail("score", err);
        return 0;
    }
    *reward = promptist_score_result_reward(r, 0);
    promptist_score_result_free(r);
    return 1;
}

static void *worker(void *arg) {
    int t = (int)(size_t)arg;
    for (int i = 0; i < calls_per_thread; i++) {
        int kind = (t + i) % (2 * PROMPTS);
        int k = kind % PROMPTS;
        if (kind < PROMPTS) {
            char *s = optimize_text(engine, prompts[k]);
            if (s && strcmp(s, expected_text[k]) != 0) {
                fprintf(stderr, "FAIL thread %d call %d: optimize(%s) differs from the single-threaded result\n", t, i, prompts[k]);
                __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
            }
            free(s);
        } else {
            double r;
            if (score_reward(engine, k, &r) && memcmp(&r, &expected_reward[k], sizeof r) != 0) {
                fprintf(stderr, "FAIL thread %d call %d: score(%s) = %.17g, single-threaded %.17g\n", t, i, prompts[k], r, expected_reward[k]);
                __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
            }
        }
    }
    return NULL;
}

/* Cancel from another thread: the scoring thread reports denoising steps and, at the first one,
 * waits until the main thread has set the flag (so the test does not depend on how threads are
 * scheduled: valgrind runs one at a time); the main thread records how many steps had been
 * reported then. */
struct cancel_state {
    int32_t flag;
    int steps;         /* denoising steps reported */
    int steps_at_set;  /* steps reported when the flag was set (-1: not yet) */
    int released;      /* set by the main thread once the flag is set */
    promptist_status status;
};

static bool count_steps(int32_t stage, size_t step, size_t total, void *user) {
    struct cancel_state *c = user;
    (void)step;
    (void)total;
    if (stage == PROMPTIST_STAGE_DENOISE && __atomic_add_fetch(&c->steps, 1, __ATOMIC_SEQ_CST) == 1) {
        while (!__atomic_load_n(&c->released, __ATOMIC_SEQ_CST)) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    }
    return true;
}

static void *cancel_scorer(void *arg) {
    struct cancel_state *c = arg;
    promptist_score_options o = score_options();
    o.steps = 50;
    o.progress = count_steps;
    o.user_data = c;
    o.cancel_flag = &c->flag;
    promptist_score_result *r = NULL;
    promptist_error *err = NULL;
    c->status = promptist_score(engine, "a lighthouse", "a lighthouse at night, 8k", &o, &r, &err);
    promptist_score_result_free(r);
    promptist_error_free(err);
    return NULL;
}

static void *open_use_free(void *arg) {
    (void)arg;
    for (int round = 0; round < 2; round++) {
        promptist_engine_options eo;
        promptist_engine_options_init(&eo, sizeof eo);
        eo.intra_op_threads = 1;
        eo.skip_checksums = 1;
        promptist_engine *e = NULL;
        promptist_error *err = NULL;
        if (promptist_engine_open(bundle, &eo, &e, &err) != PROMPTIST_STATUS_OK) {
            fail("concurrent engine_open", err);
            continue;
        }
        char *s = optimize_text(e, prompts[round]);
        if (s && strcmp(s, expected_text[round]) != 0) fail("optimize on a concurrently opened engine differs", NULL);
        free(s);
        promptist_engine_free(e);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: test_threads SCORE_BUNDLE THREADS CALLS OPENERS\n");
        return 2;
    }
    bundle = argv[1];
    int threads = atoi(argv[2]);
    calls_per_thread = atoi(argv[3]);
    int openers = atoi(argv[4]);
    if (threads < 1 || threads > 256 || calls_per_thread < 1 || openers < 1 || openers > 64) return 2;

    promptist_engine_options eo;
    promptist_engine_options_init(&eo, sizeof eo);
    eo.intra_op_threads = 1;
    promptist_error *err = NULL;
    if (promptist_engine_open(bundle, &eo, &engine, &err) != PROMPTIST_STATUS_OK) {
        fail("engine_open", err);
        return 1;
    }
    /* Single-threaded expectations. */
    for (int k = 0; k < PROMPTS; k++) {
        expected_text[k] = optimize_text(engine, prompts[k]);
        if (!expected_text[k] || !score_reward(engine, k, &expected_reward[k])) return 1;
    }

    /* 1. Many threads on one engine. */
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    for (int t = 0; t < threads; t++) pthread_create(&tid[t], NULL, worker, (void *)(size_t)t);
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    free(tid);
    fprintf(stderr, "%s %d threads x %d calls (optimize and score mixed) equal the single-threaded results\n",
            failures ? "FAIL" : "ok  ", threads, calls_per_thread);

    /* 2. Cancel from another thread during a score. */
    struct cancel_state c = {0, 0, -1, 0, PROMPTIST_STATUS_OK};
    pthread_t scorer;
    pthread_create(&scorer, NULL, cancel_scorer, &c);
    while (__atomic_load_n(&c.steps, __ATOMIC_SEQ_CST) < 1) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    c.steps_at_set = __atomic_load_n(&c.steps, __ATOMIC_SEQ_CST);
    __atomic_store_n(&c.flag, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&c.released, 1, __ATOMIC_SEQ_CST);
    pthread_join(scorer, NULL);
    int after = c.steps - c.steps_at_set;
    int cancel_ok = c.status == PROMPTIST_STATUS_CANCELLED && after <= 1 && c.steps < 50;
    fprintf(stderr, "%s cancel from another thread: %s after %d more denoising step(s) (%d of 50 in all)\n", cancel_ok ? "ok  " : "FAIL",
            promptist_status_name(c.status), after, c.steps);
    if (!cancel_ok) failures++;

    /* 3. Engines opened, used and freed concurrently. */
    int before = failures;
    pthread_t opener_tid[64];
    for (int t = 0; t < openers; t++) pthread_create(&opener_tid[t], NULL, open_use_free, NULL);
    for (int t = 0; t < openers; t++) pthread_join(opener_tid[t], NULL);
    fprintf(stderr, "%s %d threads opening, using and freeing engines at once\n", failures > before ? "FAIL" : "ok  ", openers);

    /* 4. Free after all that (valgrind / LeakSanitizer check the rest at exit). */
    promptist_engine_free(engine);
    for (int k = 0; k < PROMPTS; k++) free(expected_text[k]);
    fprintf(stderr, "%s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
