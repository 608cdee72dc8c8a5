/* Checkpoints: a save/load round trip restores parameters, AdamW moments and
 * state bit for bit; incomplete or killed saves are ignored; keep_last prunes;
 * a checkpoint for another model is refused. */
#include "checkpoint.h"
#include "m2u_error.h"
#include "rng.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void fill(float *v, size_t n, m2u_rng *r) {
    for (size_t i = 0; i < n; i++) v[i] = m2u_rng_normal(r);
}

int main(void) {
    char root[] = "/tmp/m2u_ckpt_XXXXXX";
    if (!mkdtemp(root)) return 1;
    /* two parameters in one flat buffer, as the model lays them out */
    float buf[12 + 5], m1[17], v1[17];
    m2u_param p[2] = {{.name = "a.weight", .data = buf, .n = 12, .ndim = 2, .shape = {3, 4}, .decay = 1},
                      {.name = "b.bias", .data = buf + 12, .n = 5, .ndim = 1, .shape = {5, 1}}};
    m2u_rng r;
    m2u_rng_seed(&r, 1);
    fill(buf, 17, &r);
    m2u_adamw opt;
    m2u_adamw_init(&opt, 17);
    fill(opt.m, 17, &r);
    fill(opt.v, 17, &r);
    opt.step = 7;
    memcpy(m1, opt.m, sizeof m1);
    memcpy(v1, opt.v, sizeof v1);
    float saved[17];
    memcpy(saved, buf, sizeof saved);
    m2u_train_state st = {.step = 7, .epoch = 1, .epoch_pos = 42, .model_seed = 0xfedcba9876543210ull,
                          .rng = {1, 2, 0xffffffffffffffffull, 4}, .tokens = 1234, .last_loss = 2.5};
    for (long s = 3; s <= 7; s += 2) { /* steps 3, 5, 7 with keep_last 2 -> 5 and 7 remain */
        st.step = s;
        CHECK(m2u_ckpt_save(root, &st, p, 2, &opt, 2) == 0, "%s", m2u_last_error());
    }
    char path[512];
    snprintf(path, sizeof path, "%s/checkpoints/step-00000003", root);
    CHECK(access(path, F_OK) != 0, "keep_last did not prune step 3");
    /* a save killed before COMPLETE: a newer directory without the marker is ignored */
    snprintf(path, sizeof path, "%s/checkpoints/step-00000009", root);
    mkdir(path, 0755);
    char *latest = NULL;
    CHECK(m2u_ckpt_latest(root, &latest) == 0 && latest && strstr(latest, "step-00000007"), "latest: %s",
          latest ? latest : "(none)");
    /* scramble, then restore */
    fill(buf, 17, &r);
    fill(opt.m, 17, &r);
    fill(opt.v, 17, &r);
    opt.step = 0;
    m2u_train_state back = {0};
    CHECK(m2u_ckpt_load(latest, &back, p, 2, &opt) == 0, "%s", m2u_last_error());
    CHECK(memcmp(buf, saved, sizeof saved) == 0, "parameters not restored bit for bit");
    CHECK(memcmp(opt.m, m1, sizeof m1) == 0 && memcmp(opt.v, v1, sizeof v1) == 0, "moments not restored");
    CHECK(opt.step == 7, "adamw step %ld", opt.step);
    CHECK(back.step == 7 && back.epoch == 1 && back.epoch_pos == 42 && back.model_seed == st.model_seed &&
              memcmp(back.rng, st.rng, sizeof st.rng) == 0 && back.tokens == 1234 && back.last_loss == 2.5,
          "state not restored");
    /* a model with another shape is refused, naming the tensor */
    m2u_param other[2] = {p[0], p[1]};
    other[1].shape[0] = 6;
    other[1].n = 6;
    CHECK(m2u_ckpt_load(latest, &back, other, 2, &opt) != 0 && strstr(m2u_last_error(), "b.bias"),
          "shape mismatch accepted: %s", m2u_last_error());
    CHECK(m2u_ckpt_load(path, &back, p, 2, &opt) != 0 && strstr(m2u_last_error(), "incomplete"),
          "incomplete checkpoint accepted");
    /* a damaged state.json (a counter no writer produces) is refused with a message, not
     * cast into the state: 1e300 as a step was undefined behaviour before */
    {
        char sp[600];
        snprintf(sp, sizeof sp, "%s/state.json", latest);
        const char *bad[][3] = {{"1e300", "1", "42"}, {"-3", "1", "42"}, {"7", "1", "0.5"}, {"7", "3e9", "42"}};
        for (int i = 0; i < 4; i++) {
            FILE *f = fopen(sp, "w");
            CHECK(f != NULL, "%s", sp);
            if (!f) break;
            fprintf(f, "{\"step\": %s, \"epoch\": %s, \"epoch_pos\": %s, \"model_seed\": \"5\", "
                       "\"rng\": [\"1\", \"2\", \"3\", \"4\"]}", bad[i][0], bad[i][1], bad[i][2]);
            fclose(f);
            CHECK(m2u_ckpt_load(latest, &back, p, 2, &opt) != 0 && strstr(m2u_last_error(), "state.json") &&
                      strstr(m2u_last_error(), "whole numbers"),
                  "damaged state (case %d) accepted: %s", i, m2u_last_error());
        }
    }
    free(latest);
    m2u_adamw_free(&opt);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    CHECK(system(cmd) == 0, "cleanup");
    return t_finish("test_train_checkpoint");
}
