/*
 * keel serve: the storage end of the byte-stream protocol. It holds no
 * key and sees only sealed objects. In append-only mode it is what stands
 * between a compromised client and the backups: nothing but locks can be
 * deleted, and nothing can be replaced.
 */
#include <unistd.h>

#include "rpc-internal.h"

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n) {
		ssize_t r = read(fd, b, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EPIPE;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

int kl_rpc_write_frame_(int fd, const struct kl_buf *body)
{
	uint8_t h[8];
	int rc;

	kl_rpc_put_u64_(h, body->len);
	rc = write_all(fd, h, 8);
	return rc < 0 ? rc : write_all(fd, body->data, body->len);
}

int kl_rpc_read_frame_(int fd, struct kl_buf *body)
{
	uint8_t h[8];
	uint64_t len;
	int rc;

	rc = read_all(fd, h, 8);
	if (rc < 0)
		return rc;
	len = kl_rpc_get_u64_(h);
	if (len > KL_RPC_MAX_FRAME)
		return -KL_ECORRUPT;
	kl_buf_clear(body);
	rc = kl_buf_grow(body, (size_t)len);
	if (rc < 0)
		return rc;
	rc = read_all(fd, body->data, (size_t)len);
	if (rc == -EPIPE)
		return -KL_ECORRUPT; /* cut inside a frame */
	if (rc >= 0)
		kl_buf_setlen(body, (size_t)len);
	return rc;
}

struct list_ctx {
	struct kl_buf *out;
};

static int list_add(const char *name, uint64_t size, void *ud)
{
	struct list_ctx *c = ud;

	return kl_rpc_list_add_(c->out, name, size);
}

/* What an append-only server refuses: deleting anything but a lock, and replacing the config. */
static int refused(struct kl_backend *be, const struct kl_rpc_request *q)
{
	uint64_t size;

	if (q->op == KL_RPC_DEL && q->type != KL_OBJ_LOCK)
		return 1;
	if (q->op == KL_RPC_PUT && q->type == KL_OBJ_CONFIG &&
	    be->ops->stat(be, KL_OBJ_CONFIG, "config", &size) != -ENOENT)
		return 1;
	return 0;
}

static int handle(struct kl_backend *be, bool append_only, const struct kl_rpc_request *q,
		  struct kl_buf *out)
{
	struct list_ctx lc = {.out = out};
	uint64_t size;
	uint8_t h[8];
	int rc;

	if (append_only && refused(be, q))
		return -KL_EAPPENDONLY;
	switch (q->op) {
	case KL_RPC_HELLO:
		kl_rpc_put_u64_(h, (uint64_t)KL_RPC_VERSION |
					   (uint64_t)(append_only ? KL_RPC_FLAG_APPEND_ONLY : 0)
						   << 32);
		return kl_buf_add(out, h, 8);
	case KL_RPC_LIST:
		return be->ops->list(be, q->type, list_add, &lc);
	case KL_RPC_GET:
		return be->ops->get(be, q->type, q->name, q->off, q->len, out);
	case KL_RPC_PUT:
		return be->ops->put(be, q->type, q->name, q->data, q->data_len);
	case KL_RPC_DEL:
		return be->ops->del(be, q->type, q->name);
	case KL_RPC_STAT:
		rc = be->ops->stat(be, q->type, q->name, &size);
		if (rc >= 0) {
			kl_rpc_put_u64_(h, size);
			rc = kl_buf_add(out, h, 8);
		}
		return rc;
	case KL_RPC_CREATE:
		return be->ops->create(be);
	default:
		return -EINVAL;
	}
}

int kl_serve(struct kl_backend *be, int in_fd, int out_fd, bool append_only)
{
	_cleanup_buf_ struct kl_buf req = KL_BUF_INIT(KL_RPC_MAX_FRAME);
	_cleanup_buf_ struct kl_buf resp = KL_BUF_INIT(KL_RPC_MAX_FRAME);
	int rc;

	for (;;) {
		struct kl_rpc_request q;
		uint8_t st[4];
		int32_t status;

		rc = kl_rpc_read_frame_(in_fd, &req);
		if (rc == -EPIPE)
			return 0; /* the client is done */
		if (rc < 0)
			return rc;
		rc = kl_rpc_request_parse(req.data, req.len, &q);
		if (rc < 0)
			return rc; /* a client that speaks nonsense gets no more answers */
		kl_buf_clear(&resp);
		rc = kl_buf_add(&resp, st, 4); /* status, filled in below */
		if (rc >= 0)
			rc = handle(be, append_only, &q, &resp);
		if (rc < 0)
			kl_buf_setlen(&resp, 4);
		status = kl_rpc_status_from_err(rc);
		resp.data[0] = (uint8_t)status;
		resp.data[1] = (uint8_t)((uint32_t)status >> 8);
		resp.data[2] = (uint8_t)((uint32_t)status >> 16);
		resp.data[3] = (uint8_t)((uint32_t)status >> 24);
		rc = kl_rpc_write_frame_(out_fd, &resp);
		if (rc < 0)
			return rc;
	}
}
