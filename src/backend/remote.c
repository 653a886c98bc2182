/*
 * The client end of the byte-stream protocol: runs ssh (or whatever
 * KEEL_SSH_COMMAND names) to start "keel serve --stdio PATH" on the
 * storage host, and sends it one request at a time. One connection is
 * shared by all threads; over ssh the network, not the pipe, is the limit.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rpc-internal.h"

extern char **environ;

struct remote {
	struct kl_backend b;
	pthread_mutex_t lock;
	pid_t pid;
	int to_fd, from_fd;
	bool broken;
	uint32_t flags; /* from the server's hello */
	struct kl_buf req, resp;
};

static void remote_free(struct kl_backend *b)
{
	struct remote *r = (struct remote *)b;

	if (r->to_fd >= 0)
		close(r->to_fd); /* the server ends at end of input */
	if (r->from_fd >= 0)
		close(r->from_fd);
	if (r->pid > 0) {
		int st;

		while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	pthread_mutex_destroy(&r->lock);
	kl_buf_release(&r->req);
	kl_buf_release(&r->resp);
	kl_free(r->b.location);
	kl_free(r);
}

/*
 * One round trip; on success the response data (after the status) is in
 * r->resp from offset 4. Lock held by the caller.
 */
static int call(struct remote *r, const struct kl_rpc_request *q)
{
	int32_t status;
	int rc;

	if (r->broken)
		return -EIO;
	kl_buf_clear(&r->req);
	rc = kl_rpc_request_encode(q, &r->req);
	if (rc < 0)
		return rc;
	rc = kl_rpc_write_frame_(r->to_fd, &r->req);
	if (rc >= 0)
		rc = kl_rpc_read_frame_(r->from_fd, &r->resp);
	if (rc >= 0 && r->resp.len < 4)
		rc = -KL_ECORRUPT;
	if (rc < 0) {
		/* a stream out of step cannot be trusted for anything after */
		r->broken = true;
		if (rc == -ENOMEM)
			return rc;
		return kl_backend_fail(&r->b, -EIO,
				       "the connection to '%s' broke (%s): ssh or the keel there "
				       "ended",
				       r->b.location, kl_strerror(rc));
	}
	status = (int32_t)((uint32_t)r->resp.data[0] | (uint32_t)r->resp.data[1] << 8 |
			   (uint32_t)r->resp.data[2] << 16 | (uint32_t)r->resp.data[3] << 24);
	return kl_rpc_err_from_status(status);
}

static void set_name(struct kl_rpc_request *q, const char *name)
{
	snprintf(q->name, sizeof(q->name), "%s", name ? name : "");
}

static int remote_list(struct kl_backend *b, enum kl_obj_type t, kl_list_cb cb, void *ud)
{
	struct remote *r = (struct remote *)b;
	struct kl_rpc_request q = {.op = KL_RPC_LIST, .type = (uint8_t)t};
	_cleanup_buf_ struct kl_buf copy = KL_BUF_INIT(KL_RPC_MAX_FRAME);
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = call(r, &q);
	if (rc >= 0)
		rc = kl_buf_add(&copy, r->resp.data + 4, r->resp.len - 4);
	pthread_mutex_unlock(&r->lock);
	/* callbacks may call back into the backend: not under the lock */
	if (rc >= 0)
		rc = kl_rpc_list_parse(copy.data, copy.len, cb, ud);
	return rc;
}

static int remote_get(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t off,
		      uint64_t len, struct kl_buf *out)
{
	struct remote *r = (struct remote *)b;
	struct kl_rpc_request q = {.op = KL_RPC_GET, .type = (uint8_t)t, .off = off, .len = len};
	int rc;

	set_name(&q, name);
	pthread_mutex_lock(&r->lock);
	rc = call(r, &q);
	if (rc >= 0 && len && r->resp.len - 4 != len) /* a short ranged read is never data */
		rc = kl_backend_fail(b, -EIO, "%s/%s: %zu bytes came for %llu asked",
				     kl_obj_type_name(t), name, r->resp.len - 4,
				     (unsigned long long)len);
	if (rc >= 0)
		rc = kl_buf_add(out, r->resp.data + 4, r->resp.len - 4);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

static int remote_put(struct kl_backend *b, enum kl_obj_type t, const char *name, const void *data,
		      size_t len)
{
	struct remote *r = (struct remote *)b;
	struct kl_rpc_request q = {
		.op = KL_RPC_PUT, .type = (uint8_t)t, .data = data, .data_len = len};
	int rc;

	set_name(&q, name);
	pthread_mutex_lock(&r->lock);
	rc = call(r, &q);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

static int remote_del(struct kl_backend *b, enum kl_obj_type t, const char *name)
{
	struct remote *r = (struct remote *)b;
	struct kl_rpc_request q = {.op = KL_RPC_DEL, .type = (uint8_t)t};
	int rc;

	set_name(&q, name);
	pthread_mutex_lock(&r->lock);
	rc = call(r, &q);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

static int remote_stat(struct kl_backend *b, enum kl_obj_type t, const char *name, uint64_t *size)
{
	struct remote *r = (struct remote *)b;
	struct kl_rpc_request q = {.op = KL_RPC_STAT, .type = (uint8_t)t};
	int rc;

	set_name(&q, name);
	pthread_mutex_lock(&r->lock);
	rc = call(r, &q);
	if (rc >= 0 && r->resp.len != 12)
		rc = -EIO;
	if (rc >= 0)
		*size = kl_rpc_get_u64_(r->resp.data + 4);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

static int remote_create(struct kl_backend *b)
{
	struct remote *r = (struct remote *)b;
	struct kl_rpc_request q = {.op = KL_RPC_CREATE};
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = call(r, &q);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

static const struct kl_backend_ops remote_ops = {
	.scheme = "ssh",
	.list = remote_list,
	.get = remote_get,
	.put = remote_put,
	.del = remote_del,
	.stat = remote_stat,
	.create = remote_create,
	.free = remote_free,
};

/* The remote shell runs the command line: quote the path for it. */
static char *shell_quote(const char *s)
{
	size_t n = 3;
	char *out, *w;

	for (const char *p = s; *p; p++)
		n += *p == '\'' ? 4 : 1;
	out = kl_malloc(n);
	if (!out)
		return NULL;
	w = out;
	*w++ = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'') {
			memcpy(w, "'\\''", 4);
			w += 4;
		} else {
			*w++ = *p;
		}
	}
	*w++ = '\'';
	*w = 0;
	return out;
}

struct argv {
	char *v[64];
	int n;
};

static int push_arg(struct argv *a, char *s)
{
	if (!s)
		return -ENOMEM;
	if (a->n >= 63) {
		kl_free(s);
		return -E2BIG;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
	return 0;
}

static void argv_release(struct argv *a)
{
	for (int i = 0; i < a->n; i++)
		kl_free(a->v[i]);
	a->n = 0;
}

/* ssh://[user@]host[:port]/path -> ssh [-p port] [user@]host 'keel serve --stdio -- PATH' */
static int build_argv(const char *location, struct argv *a)
{
	const char *rest = location + strlen("ssh://");
	const char *slash = strchr(rest, '/'), *colon;
	const char *ssh = getenv("KEEL_SSH_COMMAND"), *remote_keel = getenv("KEEL_REMOTE_COMMAND");
	char *words, *save = NULL, *cmd, *qpath;
	size_t hostlen;
	int rc = 0;

	if (!slash || slash == rest || !slash[1])
		return -KL_EUSAGE;
	words = kl_strdup(ssh && *ssh ? ssh : "ssh");
	if (!words)
		return -ENOMEM;
	for (char *w = strtok_r(words, " \t", &save); rc >= 0 && w;
	     w = strtok_r(NULL, " \t", &save))
		rc = push_arg(a, kl_strdup(w));
	kl_free(words);
	hostlen = (size_t)(slash - rest);
	colon = memchr(rest, ':', hostlen);
	if (rc >= 0 && colon) {
		rc = push_arg(a, kl_strdup("-p"));
		if (rc >= 0)
			rc = push_arg(a, kl_strndup(colon + 1, (size_t)(slash - colon - 1)));
		hostlen = (size_t)(colon - rest);
	}
	if (rc >= 0)
		rc = push_arg(a, kl_strndup(rest, hostlen));
	qpath = rc >= 0 ? shell_quote(slash) : NULL;
	if (rc >= 0 && !qpath)
		rc = -ENOMEM;
	if (rc >= 0) {
		size_t n = strlen(qpath) + 256;

		cmd = kl_malloc(n);
		if (cmd)
			snprintf(cmd, n, "%s serve --stdio -- %s",
				 remote_keel && *remote_keel ? remote_keel : "keel", qpath);
		rc = push_arg(a, cmd);
	}
	kl_free(qpath);
	return rc;
}

static int spawn(struct remote *r, struct argv *a)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	int rc;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		rc = -errno;
		goto fail;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	/* the CLI blocks SIGINT and SIGTERM for its signal thread: not for ssh */
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	rc = -posix_spawnp(&r->pid, a->v[0], &fa, &attr, a->v, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (rc < 0)
		goto fail;
	close(in[0]);
	close(out[1]);
	r->to_fd = in[1];
	r->from_fd = out[0];
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	return rc;
}

int kl_backend_remote_open(const char *location, struct kl_err *err, struct kl_backend **ret)
{
	struct remote *r;
	struct argv a = {{0}};
	struct kl_rpc_request q = {.op = KL_RPC_HELLO};
	int rc;

	r = kl_calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->b.ops = &remote_ops;
	r->b.location = kl_strdup(location);
	r->to_fd = r->from_fd = -1;
	pthread_mutex_init(&r->lock, NULL);
	kl_buf_init(&r->req, KL_RPC_MAX_FRAME);
	kl_buf_init(&r->resp, KL_RPC_MAX_FRAME);
	rc = r->b.location ? build_argv(location, &a) : -ENOMEM;
	if (rc == -KL_EUSAGE)
		rc = kl_backend_fail(
			&r->b, rc, "'%s' is not an ssh location: use ssh://[USER@]HOST[:PORT]/PATH",
			location);
	if (rc >= 0) {
		rc = spawn(r, &a);
		if (rc < 0 && rc != -ENOMEM)
			kl_backend_fail(&r->b, rc, "cannot run '%s': %s", a.v[0], kl_strerror(rc));
	}
	argv_release(&a);
	if (rc >= 0)
		rc = call(r, &q);
	if (rc >= 0 && r->resp.len != 12)
		rc = -EIO;
	if (rc == -EIO)
		/* ssh failed (host, key, no keel there): its own message is on stderr already */
		rc = kl_backend_fail(
			&r->b, -KL_EREMOTE,
			"no answer from 'keel serve' at '%s': ssh or the keel there failed "
			"(KEEL_SSH_COMMAND, KEEL_REMOTE_COMMAND)",
			location);
	if (rc >= 0) {
		uint64_t v = kl_rpc_get_u64_(r->resp.data + 4);

		if ((uint32_t)v != KL_RPC_VERSION)
			rc = kl_backend_fail(
				&r->b, -KL_EVERSION,
				"the keel at '%s' speaks protocol version %u, this one %u",
				location, (unsigned)(uint32_t)v, (unsigned)KL_RPC_VERSION);
		r->flags = (uint32_t)(v >> 32);
		r->b.append_only = r->flags & KL_RPC_FLAG_APPEND_ONLY;
	}
	if (rc < 0) {
		kl_backend_take_err(&r->b, err);
		remote_free(&r->b);
		return rc;
	}
	*ret = &r->b;
	return 0;
}
