/*
 * MariaDB's server as keel reaches it: the mariadb:// URI (parsed from
 * untrusted text: fuzz/fuzz-maria-uri.c), the password (a file named by
 * KEEL_MARIADB_PASSWORD_FILE or an option file, never argv), a libmariadb
 * connection, and the options the client tools get.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maria-internal.h"

bool kl_db_maria_uri(const char *s)
{
	return !strncmp(s, "mariadb://", 10) || !strncmp(s, "mysql://", 8);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* p[0..n) percent-decoded into *ret (NUL-terminated; a %00 or bad escape: -KL_EUSAGE). */
static int decode(const char *p, size_t n, char **ret, const char **why)
{
	char *s = kl_malloc(n + 1), *o = s;

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '%') {
			*o++ = p[i];
			continue;
		}
		if (i + 2 >= n) {
			kl_free(s);
			*why = "a '%' escape needs two hex digits";
			return -KL_EUSAGE;
		}
		int hi = hexval(p[i + 1]), lo = hexval(p[i + 2]);

		if (hi < 0 || lo < 0 || (hi | lo) == 0) {
			kl_free(s);
			*why = hi < 0 || lo < 0 ? "a '%' escape needs two hex digits"
						: "'%00' is not allowed";
			return -KL_EUSAGE;
		}
		*o++ = (char)(hi << 4 | lo);
		i += 2;
	}
	*o = 0;
	*ret = s;
	return 0;
}

static int parse_port(const char *p, size_t n, unsigned *ret)
{
	unsigned v = 0;

	if (!n || n > 5)
		return -KL_EUSAGE;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -KL_EUSAGE;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (!v || v > 65535)
		return -KL_EUSAGE;
	*ret = v;
	return 0;
}

/* [USER@]HOST[:PORT], p[0..n) */
static int parse_authority(const char *p, size_t n, struct kl_maria_uri *u, const char **why)
{
	const char *at = memrchr(p, '@', n), *h = p, *end = p + n, *colon = NULL;
	int rc;

	if (at) {
		if (memchr(p, ':', (size_t)(at - p))) {
			*why = "a password in the URI is refused (it would show in the process "
			       "list and the shell's history): use " KL_MARIA_PASSWORD_ENV
			       " or an option file";
			return -KL_EUSAGE;
		}
		if (at > p && (rc = decode(p, (size_t)(at - p), &u->user, why)) < 0)
			return rc;
		h = at + 1;
	}
	if (h < end && *h == '[') {
		const char *close = memchr(h, ']', (size_t)(end - h));

		if (!close || close == h + 1) {
			*why = "an IPv6 address needs its closing ']'";
			return -KL_EUSAGE;
		}
		if (close + 1 < end && close[1] != ':') {
			*why = "unexpected text after ']'";
			return -KL_EUSAGE;
		}
		if (close + 1 < end)
			colon = close + 1;
		rc = decode(h + 1, (size_t)(close - h - 1), &u->host, why);
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		if (colon != h)
			rc = decode(h, (size_t)((colon ? colon : end) - h), &u->host, why);
		else
			rc = 0;
	}
	if (rc < 0)
		return rc;
	if (colon && parse_port(colon + 1, (size_t)(end - colon - 1), &u->port) < 0) {
		*why = "the port must be a number from 1 to 65535";
		return -KL_EUSAGE;
	}
	return 0;
}

/* key=value&... ; p[0..n) */
static int parse_query(const char *p, size_t n, struct kl_maria_uri *u, const char **why)
{
	const char *end = p + n;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *e = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		size_t klen = (size_t)((eq ? eq : e) - p);
		char **field = NULL;
		int rc;

		if (klen == 6 && !memcmp(p, "socket", 6))
			field = &u->socket;
		else if (klen == 13 && !memcmp(p, "defaults-file", 13))
			field = &u->defaults_file;
		if (!field) {
			*why = "unknown URI parameter (known: socket, defaults-file)";
			return -KL_EUSAGE;
		}
		if (*field || !eq || eq + 1 == e) {
			*why = *field ? "a URI parameter is given twice"
				      : "a URI parameter needs a value";
			return -KL_EUSAGE;
		}
		rc = decode(eq + 1, (size_t)(e - eq - 1), field, why);
		if (rc < 0)
			return rc;
		p = amp ? amp + 1 : end;
	}
	return 0;
}

int kl_maria_uri_parse(const char *s, struct kl_maria_uri *ret, const char **why)
{
	size_t n = strlen(s), skip;
	const char *p, *end, *auth_end, *q;
	int rc;

	memset(ret, 0, sizeof(*ret));
	*why = "not a mariadb:// or mysql:// URI";
	if (!strncmp(s, "mariadb://", 10))
		skip = 10;
	else if (!strncmp(s, "mysql://", 8))
		skip = 8;
	else
		return -KL_EUSAGE;
	if (n > KL_MARIA_URI_MAX) {
		*why = "the URI is too long";
		return -KL_EUSAGE;
	}
	p = s + skip;
	end = s + n;
	auth_end = p + strcspn(p, "/?#");
	if (*auth_end == '#') {
		*why = "a '#' fragment is not allowed";
		return -KL_EUSAGE;
	}
	rc = parse_authority(p, (size_t)(auth_end - p), ret, why);
	if (rc < 0)
		return rc;
	q = auth_end;
	if (*q == '/')
		q++;
	if (*q && *q != '?') {
		*why = "keel backs up the whole server: no database name after '/'";
		return -KL_EUSAGE;
	}
	if (*q == '?' && strchr(q, '#')) {
		*why = "a '#' fragment is not allowed";
		return -KL_EUSAGE;
	}
	if (*q == '?')
		rc = parse_query(q + 1, (size_t)(end - q - 1), ret, why);
	if (rc >= 0 && !ret->host && !ret->socket) {
		*why = "the URI names no host and no ?socket=";
		rc = -KL_EUSAGE;
	}
	return rc;
}

void kl_maria_uri_release(struct kl_maria_uri *u)
{
	kl_free(u->user);
	kl_free(u->host);
	kl_free(u->socket);
	kl_free(u->defaults_file);
	memset(u, 0, sizeof(*u));
}

/* Appends s percent-escaped (all but unreserved characters, and '/' when keep_slash). */
static int put_escaped(struct kl_buf *b, const char *s, bool keep_slash)
{
	int rc = 0;

	for (; *s && rc >= 0; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/'))
			rc = kl_buf_addch(b, c);
		else
			rc = kl_buf_addf(b, "%%%02X", c);
	}
	return rc;
}

int kl_maria_uri_format(const struct kl_maria_uri *u, char *buf, size_t size)
{
	_cleanup_buf_ struct kl_buf b = KL_BUF_INIT(KL_MARIA_URI_MAX * 3 + 64);
	bool v6 = u->host && strchr(u->host, ':');
	int rc = kl_buf_addstr(&b, "mariadb://");

	if (rc >= 0 && u->user && (rc = put_escaped(&b, u->user, false)) >= 0)
		rc = kl_buf_addch(&b, '@');
	if (rc >= 0 && v6)
		rc = kl_buf_addch(&b, '[');
	if (rc >= 0 && u->host)
		rc = put_escaped(&b, u->host, false);
	if (rc >= 0 && v6)
		rc = kl_buf_addch(&b, ']');
	if (rc >= 0 && u->port)
		rc = kl_buf_addf(&b, ":%u", u->port);
	if (rc >= 0)
		rc = kl_buf_addch(&b, '/');
	if (rc >= 0 && u->socket && (rc = kl_buf_addstr(&b, "?socket=")) >= 0)
		rc = put_escaped(&b, u->socket, true);
	if (rc >= 0 && u->defaults_file &&
	    (rc = kl_buf_addstr(&b, u->socket ? "&defaults-file=" : "?defaults-file=")) >= 0)
		rc = put_escaped(&b, u->defaults_file, true);
	if (rc < 0)
		return rc;
	/* escaping can triple a field: what the parser would refuse is not written */
	if (b.len >= size || b.len > KL_MARIA_URI_MAX)
		return -E2BIG;
	memcpy(buf, b.data, b.len + 1);
	return 0;
}

void kl_maria_password_free(char *pw)
{
	if (pw) {
		explicit_bzero(pw, strlen(pw));
		kl_free(pw);
	}
}

int kl_maria_password(struct kl_repo *r, char **ret)
{
	const char *path = getenv(KL_MARIA_PASSWORD_ENV);
	char buf[1024];
	ssize_t n;
	int fd, e;

	*ret = NULL;
	if (!path || !*path)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		e = errno;
		return kl_repo_fail(r, -KL_EUSAGE, "cannot read the password file '%s' (%s): %s",
				    path, KL_MARIA_PASSWORD_ENV, strerror(e));
	}
	n = read(fd, buf, sizeof(buf) - 1);
	e = errno;
	close(fd);
	if (n < 0)
		return kl_repo_fail(r, -KL_EUSAGE, "cannot read the password file '%s' (%s): %s",
				    path, KL_MARIA_PASSWORD_ENV, strerror(e));
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	if (!*buf)
		return kl_repo_fail(r, -KL_EUSAGE, "the password file '%s' (%s) is empty", path,
				    KL_MARIA_PASSWORD_ENV);
	*ret = kl_strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return *ret ? 0 : -ENOMEM;
}

int kl_maria_connect(struct kl_repo *r, const struct kl_maria_uri *u, MYSQL **ret)
{
	unsigned timeout = 10;
	char *pw = NULL;
	MYSQL *m;
	int rc = kl_maria_password(r, &pw);

	*ret = NULL;
	if (rc < 0)
		return rc;
	m = mysql_init(NULL);
	if (!m) {
		kl_maria_password_free(pw);
		return -ENOMEM;
	}
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &(unsigned){3600});
	if (u->defaults_file)
		mysql_options(m, MYSQL_READ_DEFAULT_FILE, u->defaults_file);
	else
		mysql_options(m, MYSQL_READ_DEFAULT_GROUP, "client");
	if (!mysql_real_connect(m, u->host ? u->host : (u->socket ? "localhost" : NULL), u->user,
				pw, NULL, u->port, u->socket, 0)) {
		unsigned no = mysql_errno(m);

		rc = kl_repo_fail(r, -KL_EDBCONNECT, "cannot connect to the MariaDB server: %s%s",
				  mysql_error(m),
				  no == 1045 ? " (the password comes from " KL_MARIA_PASSWORD_ENV
					       ", ?defaults-file= or ~/.my.cnf)"
					     : "");
		mysql_close(m);
		kl_maria_password_free(pw);
		return rc;
	}
	kl_maria_password_free(pw);
	*ret = m;
	return 0;
}

int kl_maria_value(struct kl_repo *r, MYSQL *m, const char *sql, char *buf, size_t size)
{
	MYSQL_RES *res;
	MYSQL_ROW row;

	if (mysql_query(m, sql) || !(res = mysql_store_result(m)))
		return kl_repo_fail(r, -KL_EDBSERVER, "'%s' failed: %s", sql, mysql_error(m));
	row = mysql_fetch_row(res);
	snprintf(buf, size, "%s", row && mysql_num_fields(res) && row[0] ? row[0] : "");
	mysql_free_result(res);
	return 0;
}

/* The options file with the password, in a private directory. */
static int write_password_file(struct kl_repo *r, const char *pw, struct kl_maria_tool *t)
{
	const char *tmp = getenv("TMPDIR");
	_cleanup_buf_ struct kl_buf b = KL_BUF_INIT(4096);
	char dir[4096];
	int fd, rc;

	if (strpbrk(pw, "\r\n"))
		return kl_repo_fail(r, -KL_EUSAGE, "a MariaDB password with a line break");
	snprintf(dir, sizeof(dir), "%s/keel-maria-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return kl_repo_fail(r, -errno, "cannot create a private directory in '%s'",
				    tmp && *tmp ? tmp : "/tmp");
	t->dir = kl_strdup(dir);
	if (!t->dir || !(t->file = kl_malloc(strlen(dir) + 8)))
		return -ENOMEM;
	snprintf(t->file, strlen(dir) + 8, "%s/my.cnf", dir);
	rc = kl_buf_addstr(&b, "[client]\npassword=\"");
	for (const char *p = pw; *p && rc >= 0; p++)
		rc = *p == '"' || *p == '\\' ? kl_buf_addf(&b, "\\%c", *p) : kl_buf_addch(&b, *p);
	if (rc >= 0)
		rc = kl_buf_addstr(&b, "\"\n");
	if (rc < 0)
		return rc == -E2BIG
			       ? kl_repo_fail(r, -KL_EUSAGE, "the MariaDB password is too long")
			       : rc;
	fd = open(t->file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		rc = -errno;
	else if (write(fd, b.data, b.len) != (ssize_t)b.len)
		rc = -EIO;
	if (fd >= 0 && close(fd) < 0 && rc >= 0)
		rc = -errno;
	explicit_bzero(b.data, b.len);
	if (rc < 0)
		return kl_repo_fail(r, rc, "cannot write '%s'", t->file);
	return 0;
}

static int add_arg(struct kl_maria_tool *t, const char *key, const char *val)
{
	size_t len = strlen(key) + strlen(val) + 4;

	if (KL_NEVER(t->n >= KL_ARRAY_SIZE(t->args)) || !(t->args[t->n] = kl_malloc(len)))
		return -ENOMEM;
	snprintf(t->args[t->n++], len, "--%s=%s", key, val);
	return 0;
}

int kl_maria_tool_init(struct kl_repo *r, const struct kl_maria_uri *u, struct kl_maria_tool *t)
{
	char *pw = NULL, port[16];
	int rc;

	memset(t, 0, sizeof(*t));
	rc = kl_maria_password(r, &pw);
	if (rc >= 0 && pw)
		rc = write_password_file(r, pw, t);
	kl_maria_password_free(pw);
	/* option-file options must come first (my_load_defaults reads them there) */
	if (rc >= 0 && u->defaults_file)
		rc = add_arg(t, "defaults-file", u->defaults_file);
	if (rc >= 0 && t->file)
		rc = add_arg(t, "defaults-extra-file", t->file);
	if (rc >= 0 && u->user)
		rc = add_arg(t, "user", u->user);
	if (rc >= 0 && u->host)
		rc = add_arg(t, "host", u->host);
	snprintf(port, sizeof(port), "%u", u->port);
	if (rc >= 0 && u->port)
		rc = add_arg(t, "port", port);
	if (rc >= 0 && u->socket)
		rc = add_arg(t, "socket", u->socket);
	if (rc < 0)
		kl_maria_tool_release(t);
	return rc;
}

void kl_maria_tool_release(struct kl_maria_tool *t)
{
	if (t->file)
		unlink(t->file);
	if (t->dir)
		rmdir(t->dir);
	kl_free(t->file);
	kl_free(t->dir);
	for (size_t i = 0; i < t->n; i++)
		kl_free(t->args[i]);
	memset(t, 0, sizeof(*t));
}

int kl_maria_server_info(struct kl_repo *r, MYSQL *m, struct kl_maria_server *ret)
{
	char v[32];
	int rc;

	memset(ret, 0, sizeof(*ret));
	rc = kl_maria_value(r, m, "SELECT @@log_bin", v, sizeof(v));
	if (rc >= 0)
		ret->log_bin = !strcmp(v, "1");
	if (rc >= 0)
		rc = kl_maria_value(r, m, "SELECT @@server_id", v, sizeof(v));
	if (rc >= 0)
		ret->server_id = (uint32_t)strtoul(v, NULL, 10);
	if (rc >= 0)
		rc = kl_maria_value(r, m, "SELECT @@hostname", ret->hostname,
				    sizeof(ret->hostname));
	if (rc >= 0)
		rc = kl_maria_value(r, m, "SELECT @@version", ret->version, sizeof(ret->version));
	if (rc >= 0)
		rc = kl_maria_value(r, m, "SELECT @@datadir", ret->datadir, sizeof(ret->datadir));
	if (rc >= 0 && !*ret->datadir)
		rc = kl_repo_fail(r, -KL_EDBSERVER, "the server names no data directory");
	return rc;
}

void kl_maria_default_name(const struct kl_maria_server *s, char *buf, size_t size)
{
	size_t n;

	snprintf(buf, size, "mariadb-%s", *s->hostname ? s->hostname : "server");
	n = strlen(buf);
	if (n > KL_DB_NAME_MAX)
		buf[n = KL_DB_NAME_MAX] = 0;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
			    buf[i]))
			buf[i] = '_';
}

int kl_maria_open(struct kl_repo *r, const char *uri, struct kl_maria_uri *u, MYSQL **m,
		  struct kl_maria_server *sv)
{
	const char *why = NULL;
	int rc = kl_maria_uri_parse(uri, u, &why);

	*m = NULL;
	if (rc == -KL_EUSAGE)
		return kl_repo_fail(r, rc, "invalid MariaDB URI: %s", why);
	if (rc >= 0)
		rc = kl_maria_connect(r, u, m);
	if (rc >= 0 && sv)
		rc = kl_maria_server_info(r, *m, sv);
	return rc;
}
