/* Helpers for tests that write their own small datasets (m2u_data). */
#ifndef M2U_TEST_DATASET_UTIL_H
#define M2U_TEST_DATASET_UTIL_H

#include "m2u_error.h"
#include "manifest.h"
#include "test_util.h"

#include <stdio.h>

/* dir/manifest.json listing the one finished shard dir/shard-00000.h5 */
static inline void t_manifest_one_shard(const char *dir) {
    char path[1024];
    m2u_manifest man;
    m2u_manifest_init(&man);
    m2u_manifest_shard ms;
    CHECK(m2u_manifest_scan_shard(dir, "shard-00000.h5", &ms) == 0, "%s", m2u_last_error());
    m2u_manifest_add(&man, &ms);
    m2u_manifest_shard_free(&ms);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    CHECK(m2u_manifest_write(path, &man) == 0, "%s", m2u_last_error());
    m2u_manifest_free(&man);
}

#endif
