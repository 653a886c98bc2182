/* Shared by the two ends of the byte-stream protocol (rpc.c, serve.c, remote.c). */
#ifndef KEEL_RPC_INTERNAL_H
#define KEEL_RPC_INTERNAL_H

#include "keel/remote.h"

int kl_rpc_list_add_(struct kl_buf *out, const char *name, uint64_t size);
void kl_rpc_put_u64_(uint8_t *p, uint64_t v);
uint64_t kl_rpc_get_u64_(const uint8_t *p);

/* Whole frames: u64 LE body length, then the body. Retry on EINTR; -EPIPE at EOF. */
int kl_rpc_write_frame_(int fd, const struct kl_buf *body);
/* Reads a frame into body (replacing it); 0, -EPIPE at a clean end, -KL_ECORRUPT. */
int kl_rpc_read_frame_(int fd, struct kl_buf *body);

#endif
