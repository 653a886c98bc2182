/*
 * The daemon's HTTP listener (libmicrohttpd, driven by the daemon's own
 * poll loop through its epoll descriptor: no threads). Serves GET
 * /metrics in Prometheus text format from what a callback renders; the
 * status page and /api/status are planned (docs/DAEMON.md).
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

#include "keel/daemon.h"

struct kl_daemon_http {
	struct MHD_Daemon *mhd;
	int (*render)(struct kl_buf *out, void *userdata);
	void *userdata;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     const void *body, size_t n)
{
	struct MHD_Response *res =
		MHD_create_response_from_buffer(n, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result r;

	if (!res)
		return MHD_NO;
	MHD_add_response_header(res, "Content-Type", type);
	r = MHD_queue_response(conn, status, res);
	MHD_destroy_response(res);
	return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct kl_daemon_http *h = cls;
	static const char not_found[] = "not found\n";

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "", 0);
	if (!strcmp(url, "/metrics")) {
		_cleanup_buf_ struct kl_buf out = KL_BUF_INIT(1u << 22);

		if (h->render(&out, h->userdata) < 0)
			return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "", 0);
		return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4", out.data, out.len);
	}
	return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", not_found, sizeof(not_found) - 1);
}

/* "127.0.0.1:9911", "[::1]:9911", "localhost:9911": loopback only (docs/DAEMON.md) */
static int resolve(const char *listen, struct sockaddr_storage *ss, socklen_t *len,
		   struct kl_err *err)
{
	_cleanup_free_ char *host = NULL;
	const char *colon = strrchr(listen, ':');
	struct addrinfo hints = {.ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *ai;
	bool loopback;
	int r;

	if (!colon || colon == listen || !colon[1])
		return kl_fail(err, -KL_EUSAGE, "[http] listen '%s' is not HOST:PORT", listen);
	if (listen[0] == '[' && colon[-1] == ']')
		host = kl_strndup(listen + 1, (size_t)(colon - listen - 2));
	else
		host = kl_strndup(listen, (size_t)(colon - listen));
	if (!host)
		return -ENOMEM;
	r = getaddrinfo(host, colon + 1, &hints, &ai);
	if (r != 0)
		return kl_fail(err, -KL_EUSAGE, "[http] listen '%s': %s", listen, gai_strerror(r));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	if (ss->ss_family == AF_INET)
		loopback = (ntohl(((struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	else
		loopback = ss->ss_family == AF_INET6 &&
			   IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ss)->sin6_addr);
	if (!loopback)
		return kl_fail(err, -KL_EUSAGE,
			       "[http] listen '%s': only loopback addresses for now (listening "
			       "beyond needs token-file, which is planned)",
			       listen);
	return 0;
}

int kl_daemon_http_start(const char *listen, int (*render)(struct kl_buf *out, void *userdata),
			 void *userdata, struct kl_daemon_http **ret, struct kl_err *err)
{
	struct kl_daemon_http *h;
	struct sockaddr_storage ss;
	socklen_t len;
	int r;

	*ret = NULL;
	r = resolve(listen, &ss, &len, err);
	if (r < 0)
		return r;
	h = kl_calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->render = render;
	h->userdata = userdata;
	h->mhd = MHD_start_daemon(MHD_USE_EPOLL | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0,
				  NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, &ss,
				  MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT,
				  10u, MHD_OPTION_END);
	if (!h->mhd) {
		kl_free(h);
		return kl_fail(err, -EADDRINUSE, "cannot listen on '%s'", listen);
	}
	*ret = h;
	return 0;
}

int kl_daemon_http_fd(const struct kl_daemon_http *h)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);

	return i ? i->epoll_fd : -1;
}

int kl_daemon_http_timeout_ms(const struct kl_daemon_http *h)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (MHD_get_timeout(h->mhd, &t) != MHD_YES)
		return -1;
	return t > 60000 ? 60000 : (int)t;
}

void kl_daemon_http_run(struct kl_daemon_http *h)
{
	MHD_run(h->mhd);
}

void kl_daemon_http_free(struct kl_daemon_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->mhd);
	kl_free(h);
}
