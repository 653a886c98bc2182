#include "keel/backend.h"
#include "keel/remote.h"
#include "keel/s3.h"

const char *kl_obj_type_name(enum kl_obj_type t)
{
	static const char *const names[KL_OBJ_TYPES] = {
		[KL_OBJ_CONFIG] = "config", [KL_OBJ_KEY] = "keys",  [KL_OBJ_SNAPSHOT] = "snapshots",
		[KL_OBJ_INDEX] = "index",   [KL_OBJ_DATA] = "data", [KL_OBJ_LOCK] = "locks",
	};
	return (unsigned)t < KL_OBJ_TYPES ? names[t] : "?";
}

int kl_backend_open(const char *location, struct kl_backend **ret)
{
	if (!location || !*location)
		return -KL_EUSAGE;
	if (!strncmp(location, "local:", 6))
		return kl_backend_local_open(location + 6, ret);
	if (!strncmp(location, "s3:", 3))
		return kl_backend_s3_open(location, ret);
	if (!strncmp(location, "ssh://", 6))
		return kl_backend_remote_open(location, ret);
	if (strstr(location, "://"))
		return -EPROTONOSUPPORT;
	return kl_backend_local_open(location, ret);
}

void kl_backend_free(struct kl_backend *b)
{
	if (b)
		b->ops->free(b);
}
