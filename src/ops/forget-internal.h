/* Shared by the retention policy files (forget.c, forget-time.c) and their unit tests. */
#ifndef KEEL_FORGET_INTERNAL_H
#define KEEL_FORGET_INTERNAL_H

#include "keel/forget.h"
#include "keel/util.h"

/* Seconds, rounded towards minus infinity. */
int64_t kl_forget_floor_sec(int64_t ns);
/*
 * The local-time bucket of instant t for every enum kl_bucket: equal keys
 * mean the same local hour, day, ISO week, month or year, and keys grow
 * with local wall time.
 */
void kl_forget_bucket_keys(int64_t t, int64_t keys[KL_BUCKETS]);

#endif
