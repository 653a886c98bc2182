/*
 * The byte-stream protocol between a keel client and "keel serve": pure
 * encoding and parsing, shared by both ends and fuzzed.
 */
#include "rpc-internal.h"

/* Wire status codes (docs/FORMAT.md section 12). */
enum {
	WIRE_OK = 0,
	WIRE_ENOENT = -1,
	WIRE_EEXIST = -2,
	WIRE_EACCES = -3,
	WIRE_ENOSPC = -4,
	WIRE_EIO = -5,
	WIRE_APPEND_ONLY = -6,
	WIRE_EINVAL = -7,
	WIRE_EROFS = -8,
};

int32_t kl_rpc_status_from_err(int err)
{
	if (err >= 0)
		return WIRE_OK;
	switch (-err) {
	case ENOENT:
		return WIRE_ENOENT;
	case EEXIST:
		return WIRE_EEXIST;
	case EACCES:
	case EPERM:
		return WIRE_EACCES;
	case ENOSPC:
	case EDQUOT:
		return WIRE_ENOSPC;
	case KL_EAPPENDONLY:
		return WIRE_APPEND_ONLY;
	case EINVAL:
	case KL_EUSAGE:
		return WIRE_EINVAL;
	case EROFS:
		return WIRE_EROFS;
	default:
		return WIRE_EIO;
	}
}

int kl_rpc_err_from_status(int32_t status)
{
	switch (status) {
	case WIRE_OK:
		return 0;
	case WIRE_ENOENT:
		return -ENOENT;
	case WIRE_EEXIST:
		return -EEXIST;
	case WIRE_EACCES:
		return -EACCES;
	case WIRE_ENOSPC:
		return -ENOSPC;
	case WIRE_APPEND_ONLY:
		return -KL_EAPPENDONLY;
	case WIRE_EINVAL:
		return -EINVAL;
	case WIRE_EROFS:
		return -EROFS;
	default:
		return -EIO;
	}
}

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Object names are ours: hex ids and "config"; nothing that could climb a path. */
static bool name_ok(const uint8_t *p, size_t n)
{
	if (n >= sizeof(((struct kl_rpc_request *)0)->name))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'z')))
			return false;
	return true;
}

#define REQ_FIXED (1 + 1 + 2 + 8 + 8)

int kl_rpc_request_encode(const struct kl_rpc_request *q, struct kl_buf *out)
{
	size_t nlen = strlen(q->name);
	uint8_t h[REQ_FIXED];
	int rc;

	if (!name_ok((const uint8_t *)q->name, nlen))
		return -EINVAL;
	h[0] = q->op;
	h[1] = q->type;
	put_u16(h + 2, (uint16_t)nlen);
	put_u64(h + 4, q->off);
	put_u64(h + 12, q->len);
	rc = kl_buf_add(out, h, 4);
	if (rc >= 0)
		rc = kl_buf_add(out, q->name, nlen);
	if (rc >= 0)
		rc = kl_buf_add(out, h + 4, 16);
	if (rc >= 0 && q->data_len)
		rc = kl_buf_add(out, q->data, q->data_len);
	return rc;
}

int kl_rpc_request_parse(const uint8_t *p, size_t n, struct kl_rpc_request *ret)
{
	size_t nlen;

	memset(ret, 0, sizeof(*ret));
	if (n < REQ_FIXED)
		return -KL_ECORRUPT;
	nlen = get_u16(p + 2);
	if (n - REQ_FIXED < nlen || !name_ok(p + 4, nlen))
		return -KL_ECORRUPT;
	ret->op = p[0];
	ret->type = p[1];
	if (ret->op < KL_RPC_HELLO || ret->op > KL_RPC_CREATE || ret->type >= KL_OBJ_TYPES)
		return -KL_ECORRUPT;
	memcpy(ret->name, p + 4, nlen);
	ret->name[nlen] = 0;
	ret->off = get_u64(p + 4 + nlen);
	ret->len = get_u64(p + 12 + nlen);
	ret->data = p + REQ_FIXED + nlen;
	ret->data_len = n - REQ_FIXED - nlen;
	if (ret->data_len && ret->op != KL_RPC_PUT)
		return -KL_ECORRUPT;
	return 0;
}

int kl_rpc_list_parse(const uint8_t *p, size_t n, kl_list_cb cb, void *ud)
{
	while (n) {
		char name[256];
		size_t nlen;
		int rc;

		if (n < 2)
			return -KL_ECORRUPT;
		nlen = get_u16(p);
		if (n - 2 < nlen + 8 || !name_ok(p + 2, nlen))
			return -KL_ECORRUPT;
		memcpy(name, p + 2, nlen);
		name[nlen] = 0;
		rc = cb(name, get_u64(p + 2 + nlen), ud);
		if (rc < 0)
			return rc;
		p += 2 + nlen + 8;
		n -= 2 + nlen + 8;
	}
	return 0;
}

int kl_rpc_list_add_(struct kl_buf *out, const char *name, uint64_t size)
{
	size_t nlen = strlen(name);
	uint8_t h[8];
	int rc;

	if (!name_ok((const uint8_t *)name, nlen))
		return 0; /* not an object of ours (a temporary file): not listed */
	put_u16(h, (uint16_t)nlen);
	rc = kl_buf_add(out, h, 2);
	if (rc >= 0)
		rc = kl_buf_add(out, name, nlen);
	put_u64(h, size);
	if (rc >= 0)
		rc = kl_buf_add(out, h, 8);
	return rc;
}

void kl_rpc_put_u64_(uint8_t *p, uint64_t v)
{
	put_u64(p, v);
}

uint64_t kl_rpc_get_u64_(const uint8_t *p)
{
	return get_u64(p);
}
