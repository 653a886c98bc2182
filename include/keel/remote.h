/*
 * Repositories over a byte stream (ssh://): a keel client talks to
 * "keel serve --stdio PATH" on the storage host through ssh's stdin and
 * stdout. The server needs no password (it stores sealed objects only)
 * and, with --append-only (typically as an ssh forced command), refuses
 * every delete except of locks and every overwrite: a client that was
 * taken over cannot destroy what it backed up. Wire format: docs/FORMAT.md
 * section 12.
 */
#ifndef KEEL_REMOTE_H
#define KEEL_REMOTE_H

#include "keel/backend.h"

#define KL_RPC_VERSION 1
#define KL_RPC_MAX_FRAME ((uint64_t)2 << 30) /* a body never exceeds 2 GiB */
#define KL_RPC_FLAG_APPEND_ONLY 1u

enum kl_rpc_op {
	KL_RPC_HELLO = 1,
	KL_RPC_LIST = 2,
	KL_RPC_GET = 3,
	KL_RPC_PUT = 4,
	KL_RPC_DEL = 5,
	KL_RPC_STAT = 6,
	KL_RPC_CREATE = 7,
};

struct kl_rpc_request {
	uint8_t op;
	uint8_t type; /* enum kl_obj_type */
	char name[256];
	uint64_t off, len;
	const uint8_t *data; /* PUT: points into the parsed body */
	size_t data_len;
};

/* Request body <-> struct. parse: 0 or -KL_ECORRUPT (names: [0-9a-z.] only). */
int kl_rpc_request_encode(const struct kl_rpc_request *q, struct kl_buf *out);
int kl_rpc_request_parse(const uint8_t *p, size_t n, struct kl_rpc_request *ret);

/* Error codes on the wire are fixed numbers, independent of the platform. */
int32_t kl_rpc_status_from_err(int err);
int kl_rpc_err_from_status(int32_t status);

/* Calls cb for each (name, size) of a LIST response's data; -KL_ECORRUPT if malformed. */
int kl_rpc_list_parse(const uint8_t *p, size_t n, kl_list_cb cb, void *ud);

/*
 * Serves one client on in_fd/out_fd until it closes the stream. Returns 0
 * then, or a negative code on a broken stream.
 */
int kl_serve(struct kl_backend *be, int in_fd, int out_fd, bool append_only);

/*
 * "ssh://[user@]host[:port]/path" (a path relative to the login directory:
 * "ssh://h/~/repo"). When it fails, the detail goes to err (may be NULL).
 */
int kl_backend_remote_open(const char *location, struct kl_err *err, struct kl_backend **ret);

#endif
