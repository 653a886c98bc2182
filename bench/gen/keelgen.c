/*
 * keelgen: deterministic corpus generator and mutator for keel's
 * benchmarks (bench/run.sh). Every byte it writes is a function of the
 * seed and, for the disk image, of the files named on stdin, so two
 * machines with the same Debian packages get the same corpus.
 *
 *   keelgen image  SEED MIB OUT      disk-image-like file; source files on stdin
 *   keelgen sql    SEED MIB OUT      SQL-dump-like text
 *   keelgen unique SEED MIB OUT      mostly unique data (scaling runs)
 *   keelgen files  SEED COUNT DIR    COUNT small files under DIR (scaling)
 *   keelgen mutate SEED ROOT UNDO    change ~1% of the files listed on
 *                                    stdin (relative to ROOT), logging
 *                                    what it takes to undo it in UNDO
 *   keelgen mutate-image SEED FILE UNDO   rewrite ~1% of 4 KiB blocks
 *   keelgen mutate-sql   SEED FILE UNDO   insert/append ~1% more rows
 *   keelgen revert UNDO ROOT         undo every logged change, newest first
 *
 * Prints one summary line on stdout (what changed, how many bytes), and
 * errors on stderr. A bench tool, not part of keel: it may exit().
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define BLK 4096u
#define MIB (1024u * 1024u)

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("keelgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (errno)
		fprintf(stderr, ": %s", strerror(errno));
	fputc('\n', stderr);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory");
	return p;
}

/* ---- PRNG: xoshiro256** seeded through splitmix64 ------------------- */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Each subcommand mixes its own name in, so "image 1" and "sql 1" differ. */
static void rng_seed(struct rng *r, uint64_t seed, const char *domain)
{
	uint64_t x = seed;

	for (const char *p = domain; *p; p++)
		x = (x ^ (uint8_t)*p) * 0x100000001b3ull;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* Uniform in [0, n); n > 0. The modulo bias is irrelevant here. */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	return rng_next(r) % n;
}

static inline uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
	return lo + rng_below(r, hi - lo + 1);
}

static void rng_fill(struct rng *r, uint8_t *p, size_t n)
{
	while (n >= 8) {
		uint64_t v = rng_next(r);

		memcpy(p, &v, 8);
		p += 8;
		n -= 8;
	}
	if (n) {
		uint64_t v = rng_next(r);

		memcpy(p, &v, n);
	}
}

/* ---- text ------------------------------------------------------------ */

static const char *const words[] = {
	"the", "of", "and", "to", "in", "is", "for", "that", "on", "with",
	"buffer", "index", "chunk", "pack", "snapshot", "repository", "key",
	"error", "return", "value", "length", "offset", "struct", "node",
	"tree", "file", "data", "block", "write", "read", "lock", "cache",
	"order", "customer", "invoice", "payment", "shipped", "pending",
	"refund", "account", "balance", "update", "select", "insert", "where",
	"from", "group", "null", "true", "false", "alpha", "beta", "gamma",
	"delta", "kernel", "driver", "memory", "page", "queue", "thread",
	"signal", "timer", "device", "network", "packet", "socket", "stream",
	"Lisbon", "Oslo", "Kraków", "Nairobi", "Osaka", "Quito", "Tampere",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static const char *const first_names[] = {
	"Ada", "Bram", "Chloé", "Dmitri", "Elif", "Femi", "Greta", "Hiro",
	"Ines", "Jonas", "Kavya", "Luca", "Maja", "Nnamdi", "Olga", "Pablo",
	"Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yusuf",
};
static const char *const last_names[] = {
	"Kowalski", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva",
	"Novak", "Haddad", "Fischer", "Rossi", "Nguyen", "Petrov", "Mensah",
	"O'Brien", "García", "Kaur", "Jensen", "Dubois", "Ivanova", "Sato",
};
#define N_FIRST (sizeof(first_names) / sizeof(first_names[0]))
#define N_LAST (sizeof(last_names) / sizeof(last_names[0]))

/* A growable byte buffer for generated text. */
struct tbuf {
	char *p;
	size_t len, cap;
};

static void tb_reserve(struct tbuf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	while (b->cap < b->len + more)
		b->cap = b->cap ? b->cap * 2 : 65536;
	b->p = realloc(b->p, b->cap);
	if (!b->p)
		die("out of memory");
}

static void tb_add(struct tbuf *b, const char *s, size_t n)
{
	tb_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void tb_printf(struct tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(struct tbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	tb_reserve(b, 512);
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("vsnprintf");
	if ((size_t)n >= b->cap - b->len) {
		tb_reserve(b, (size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/* About n bytes of prose-like text: words, punctuation, line breaks. */
static void tb_text(struct tbuf *b, struct rng *r, size_t n)
{
	size_t end = b->len + n, col = 0;

	while (b->len < end) {
		const char *w = words[rng_below(r, NWORDS)];
		size_t wl = strlen(w);

		tb_add(b, w, wl);
		col += wl + 1;
		if (col > 60 + rng_below(r, 20)) {
			tb_add(b, rng_below(r, 4) ? "\n" : ".\n", rng_below(r, 4) ? 1 : 2);
			col = 0;
		} else {
			tb_add(b, " ", 1);
		}
	}
	b->len = end; /* exact size */
}

/* ---- file helpers ---------------------------------------------------- */

static FILE *xfopen(const char *path, const char *mode)
{
	FILE *f = fopen(path, mode);

	if (!f)
		die("cannot open '%s'", path);
	return f;
}

static void xfwrite(const void *p, size_t n, FILE *f, const char *name)
{
	if (n && fwrite(p, 1, n, f) != n)
		die("cannot write '%s'", name);
}

static void xfclose(FILE *f, const char *name)
{
	if (fclose(f) != 0)
		die("cannot close '%s'", name);
}

static uint8_t *read_prefix(const char *path, size_t max, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	uint8_t *p;
	size_t off = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		die("cannot open '%s'", path);
	if ((uint64_t)st.st_size < max)
		max = (size_t)st.st_size;
	p = xmalloc(max);
	while (off < max) {
		ssize_t k = read(fd, p + off, max - off);

		if (k <= 0)
			die("cannot read '%s'", path);
		off += (size_t)k;
	}
	close(fd);
	*len = off;
	return p;
}

static uint8_t *read_all(const char *path, size_t *len)
{
	return read_prefix(path, SIZE_MAX, len);
}

static void write_all(const char *path, const void *p, size_t n)
{
	FILE *f = xfopen(path, "wb");

	xfwrite(p, n, f, path);
	xfclose(f, path);
}

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || end == s)
		die("bad %s '%s'", what, s);
	return v;
}

/* Reads stdin lines into an array of strings. */
static char **read_lines(size_t *n)
{
	char **v = NULL, *line = NULL;
	size_t cap = 0, lcap = 0, k = 0;
	ssize_t len;

	while ((len = getline(&line, &lcap, stdin)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = 0;
		if (!len)
			continue;
		if (k == cap) {
			cap = cap ? cap * 2 : 1024;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				die("out of memory");
		}
		v[k++] = strdup(line);
	}
	free(line);
	*n = k;
	return v;
}

static void shuffle(struct rng *r, size_t *idx, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = rng_below(r, i);
		size_t t = idx[i - 1];

		idx[i - 1] = idx[j];
		idx[j] = t;
	}
}

/* ---- image ------------------------------------------------------------ */

/*
 * A disk image is a sequence of extents, each picked at random with
 * probability 1/2 files, 1/4 zeros, 1/4 random: a "files" extent packs
 * real files (binaries and libraries from /usr) back to back (the first 4 MiB of larger ones) (each padded to 4 KiB, like a file
 * system) until it holds at least 2 MiB; zero and random extents are
 * 4 KiB to 2 MiB. By bytes that is about 2/3 binaries, 1/6 zeros, 1/6
 * random. Binaries are taken in a seeded shuffle of the sorted list;
 * when the list runs out it is reshuffled and reused.
 */
static int cmd_image(uint64_t seed, uint64_t mib, const char *out)
{
	struct rng r;
	size_t n, *order, next = 0, nbin = 0, nreuse = 0;
	char **paths = read_lines(&n);
	uint64_t size = mib * MIB, done = 0, by_kind[3] = { 0 };
	uint8_t *buf = xmalloc(2 * MIB);
	FILE *f = xfopen(out, "wb");

	/* keep the files that can be opened, in the order given */
	{
		size_t k = 0;

		for (size_t i = 0; i < n; i++) {
			if (access(paths[i], R_OK) == 0)
				paths[k++] = paths[i];
			else
				free(paths[i]);
		}
		n = k;
		errno = 0;
	}
	rng_seed(&r, seed, "image");
	order = xmalloc((n ? n : 1) * sizeof(*order));
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	shuffle(&r, order, n);

	while (done < size) {
		uint64_t pick = rng_below(&r, 4), len;

		if (pick < 2 && n) {
			uint64_t ext = 0;

			while (ext < 2 * MIB && done + ext < size) {
				size_t blen;
				uint8_t *bin;

				if (next == n) {
					shuffle(&r, order, n);
					next = 0;
					nreuse++;
				}
				bin = read_prefix(paths[order[next++]], 4 * MIB, &blen);
				if (blen > size - done - ext)
					blen = (size_t)(size - done - ext);
				xfwrite(bin, blen, f, out);
				free(bin);
				ext += blen;
				nbin++;
				if (ext % BLK && done + ext < size) {
					uint64_t pad = BLK - ext % BLK;

					if (pad > size - done - ext)
						pad = size - done - ext;
					memset(buf, 0, pad);
					xfwrite(buf, pad, f, out);
					ext += pad;
				}
			}
			by_kind[0] += ext;
			done += ext;
			continue;
		}
		len = BLK * rng_range(&r, 1, 512);
		if (len > size - done)
			len = size - done;
		if (pick == 2 || !n) {
			memset(buf, 0, len);
			by_kind[1] += len;
		} else {
			rng_fill(&r, buf, len);
			by_kind[2] += len;
		}
		xfwrite(buf, len, f, out);
		done += len;
	}
	xfclose(f, out);
	printf("image %s: %" PRIu64 " bytes: binaries %" PRIu64 " (%zu files, list reused %zu times), zeros %" PRIu64
	       ", random %" PRIu64 "\n",
	       out, size, by_kind[0], nbin, nreuse, by_kind[1], by_kind[2]);
	free(buf);
	free(order);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return 0;
}

/* ---- SQL dump ----------------------------------------------------------- */

static void sql_header(struct tbuf *b, uint64_t seed)
{
	tb_printf(b,
		  "--\n-- keel bench SQL dump, seed %" PRIu64 "\n--\n\n"
		  "SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\n\n"
		  "CREATE TABLE customers (\n    id bigint PRIMARY KEY,\n    name text NOT NULL,\n"
		  "    email text NOT NULL,\n    city text,\n    created_at timestamp NOT NULL,\n"
		  "    balance numeric(12,2) NOT NULL DEFAULT 0,\n    note text\n);\n\n"
		  "CREATE TABLE orders (\n    id bigint PRIMARY KEY,\n    customer_id bigint NOT NULL REFERENCES customers(id),\n"
		  "    status text NOT NULL,\n    total numeric(12,2) NOT NULL,\n    placed_at timestamp NOT NULL\n);\n\n"
		  "CREATE TABLE events (\n    id bigint PRIMARY KEY,\n    at timestamp NOT NULL,\n    kind text NOT NULL,\n"
		  "    payload jsonb\n);\n\n",
		  seed);
}

static const char *const statuses[] = { "pending", "paid", "shipped", "delivered", "refunded", "cancelled" };
static const char *const kinds[] = { "login", "logout", "view", "search", "add_to_cart", "checkout", "error" };
static const char *const paths_[] = { "/", "/api/v1/items", "/api/v1/orders", "/cart", "/search", "/account" };

static void sql_ts(struct tbuf *b, struct rng *r)
{
	tb_printf(b, "'20%02u-%02u-%02u %02u:%02u:%02u'", (unsigned)rng_range(r, 15, 25), (unsigned)rng_range(r, 1, 12),
		  (unsigned)rng_range(r, 1, 28), (unsigned)rng_below(r, 24), (unsigned)rng_below(r, 60),
		  (unsigned)rng_below(r, 60));
}

/* One INSERT row for table t (0 customers, 1 orders, 2 events). */
static void sql_row(struct tbuf *b, struct rng *r, int t, uint64_t id, uint64_t ncust)
{
	if (t == 0) {
		const char *fn = first_names[rng_below(r, N_FIRST)], *ln = last_names[rng_below(r, N_LAST)];

		tb_printf(b, "INSERT INTO customers VALUES (%" PRIu64 ", '%s %s', '", id, fn, ln);
		for (const char *p = fn; *p; p++)
			if (*p != '\'')
				tb_add(b, p, 1);
		tb_printf(b, ".%" PRIu64 "@example.org', '%s', ", id, words[rng_range(r, NWORDS - 7, NWORDS - 1)]);
		sql_ts(b, r);
		size_t note;

		tb_printf(b, ", %" PRIu64 ".%02u, '", rng_below(r, 100000), (unsigned)rng_below(r, 100));
		note = b->len;
		tb_text(b, r, rng_range(r, 0, 80));
		for (size_t i = note; i < b->len; i++)
			if (b->p[i] == '\n' || b->p[i] == '\'')
				b->p[i] = ' ';
		tb_add(b, "');\n", 4);
	} else if (t == 1) {
		tb_printf(b, "INSERT INTO orders VALUES (%" PRIu64 ", %" PRIu64 ", '%s', %" PRIu64 ".%02u, ", id,
			  1 + rng_below(r, ncust ? ncust : 1), statuses[rng_below(r, 6)], rng_below(r, 5000),
			  (unsigned)rng_below(r, 100));
		sql_ts(b, r);
		tb_add(b, ");\n", 3);
	} else {
		tb_printf(b, "INSERT INTO events VALUES (%" PRIu64 ", ", id);
		sql_ts(b, r);
		tb_printf(b,
			  ", '%s', '{\"ip\": \"10.%u.%u.%u\", \"path\": \"%s/%" PRIu64 "\", \"ms\": %u, "
			  "\"ua\": \"Mozilla/5.0 (X11; Linux x86_64) keel-bench/%u.%u\"}');\n",
			  kinds[rng_below(r, 7)], (unsigned)rng_below(r, 256), (unsigned)rng_below(r, 256),
			  (unsigned)rng_below(r, 256), paths_[rng_below(r, 6)], rng_below(r, 1000000),
			  (unsigned)rng_below(r, 2000), (unsigned)rng_below(r, 10), (unsigned)rng_below(r, 10));
	}
}

/* Tables come in blocks of 1000 rows, round robin, until the size is reached. */
static int cmd_sql(uint64_t seed, uint64_t mib, const char *out)
{
	struct rng r;
	struct tbuf b = { 0 };
	uint64_t size = mib * MIB, done = 0, ids[3] = { 0 }, rows = 0;
	FILE *f = xfopen(out, "wb");
	int t = 0;

	rng_seed(&r, seed, "sql");
	sql_header(&b, seed);
	while (done + b.len < size) {
		for (int i = 0; i < 1000 && done + b.len < size; i++, rows++)
			sql_row(&b, &r, t, ++ids[t], ids[0]);
		t = (t + 1) % 3;
		if (b.len >= MIB) {
			xfwrite(b.p, b.len, f, out);
			done += b.len;
			b.len = 0;
		}
	}
	xfwrite(b.p, b.len, f, out);
	done += b.len;
	xfclose(f, out);
	printf("sql %s: %" PRIu64 " bytes, %" PRIu64 " rows\n", out, done, rows);
	free(b.p);
	return 0;
}

/* ---- scaling data -------------------------------------------------------- */

/* Mostly unique: 7/8 random 64 KiB runs, 1/8 text, so it barely compresses. */
static int cmd_unique(uint64_t seed, uint64_t mib, const char *out)
{
	struct rng r;
	struct tbuf b = { 0 };
	uint64_t size = mib * MIB, done = 0;
	FILE *f = xfopen(out, "wb");

	rng_seed(&r, seed, "unique");
	tb_reserve(&b, 4 * MIB);
	while (done < size) {
		b.len = 0;
		while (b.len < 2 * MIB) {
			if (rng_below(&r, 8)) {
				tb_reserve(&b, 65536);
				rng_fill(&r, (uint8_t *)b.p + b.len, 65536);
				b.len += 65536;
			} else {
				tb_text(&b, &r, 65536);
			}
		}
		if (b.len > size - done)
			b.len = (size_t)(size - done);
		xfwrite(b.p, b.len, f, out);
		done += b.len;
	}
	xfclose(f, out);
	printf("unique %s: %" PRIu64 " bytes\n", out, done);
	free(b.p);
	return 0;
}

/* COUNT files of 256 B .. 8 KiB of text, 1000 to a directory. */
static int cmd_files(uint64_t seed, uint64_t count, const char *dir)
{
	struct rng r;
	struct tbuf b = { 0 };
	uint64_t bytes = 0;
	char path[4096];

	rng_seed(&r, seed, "files");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		die("cannot create '%s'", dir);
	for (uint64_t i = 0; i < count; i++) {
		if (i % 1000 == 0) {
			snprintf(path, sizeof(path), "%s/d%05" PRIu64, dir, i / 1000);
			if (mkdir(path, 0755) < 0 && errno != EEXIST)
				die("cannot create '%s'", path);
		}
		snprintf(path, sizeof(path), "%s/d%05" PRIu64 "/f%07" PRIu64 ".txt", dir, i / 1000, i);
		b.len = 0;
		tb_printf(&b, "file %" PRIu64 " seed %" PRIu64 " %016" PRIx64 "\n", i, seed, rng_next(&r));
		tb_text(&b, &r, rng_range(&r, 256, 8192));
		write_all(path, b.p, b.len);
		bytes += b.len;
	}
	printf("files %s: %" PRIu64 " files, %" PRIu64 " bytes\n", dir, count, bytes);
	free(b.p);
	return 0;
}

/* ---- mutation and its undo log -------------------------------------------- */

/*
 * UNDO/log holds one line per change; UNDO/sN holds saved bytes:
 *   M N PATH          file changed or deleted: sN is its whole old content
 *   N PATH            file created: delete it
 *   B N OFF LEN PATH  LEN bytes at OFF overwritten: sN holds the old ones
 * revert replays the log backwards. Paths are relative to ROOT (or as
 * given for single-file mutators) and contain no newline.
 */
struct undo {
	FILE *log;
	const char *dir;
	unsigned n;
};

static void undo_open(struct undo *u, const char *dir)
{
	char p[4096];

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		die("cannot create '%s'", dir);
	snprintf(p, sizeof(p), "%s/log", dir);
	u->log = xfopen(p, "a");
	u->dir = dir;
	/* continue numbering after what the log already holds */
	u->n = 0;
	for (;;) {
		snprintf(p, sizeof(p), "%s/s%u", dir, u->n);
		if (access(p, F_OK) != 0)
			break;
		u->n++;
	}
	errno = 0;
}

static void undo_save_file(struct undo *u, const char *path)
{
	char p[4096];
	size_t n;
	uint8_t *old = read_all(path, &n);

	snprintf(p, sizeof(p), "%s/s%u", u->dir, u->n);
	write_all(p, old, n);
	free(old);
	fprintf(u->log, "M %u %s\n", u->n++, path);
	fflush(u->log);
}

static void undo_close(struct undo *u)
{
	xfclose(u->log, "undo log");
}

/* Replaces bytes [off, off+del) of path with ins[0..nins). */
static void splice_file(const char *path, size_t off, size_t del, const char *ins, size_t nins)
{
	size_t n;
	uint8_t *old = read_all(path, &n);
	FILE *f;

	if (off > n)
		off = n;
	if (del > n - off)
		del = n - off;
	f = xfopen(path, "wb");
	xfwrite(old, off, f, path);
	xfwrite(ins, nins, f, path);
	xfwrite(old + off + del, n - off - del, f, path);
	xfclose(f, path);
	free(old);
}

static off_t file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		die("cannot stat '%s'", path);
	return st.st_size;
}

/*
 * Picks round(1%) of the listed files in a seeded shuffle; each one is
 * edited in the middle (40%: delete 0-200 bytes, insert 1-400 bytes of
 * text, so later bytes shift), appended to (30%: 64 B - 8 KiB), or
 * deleted (30%). Then adds one new file (512 B - 32 KiB of text) per five
 * changed ones, in the directory of a random listed file.
 */
static int cmd_mutate(uint64_t seed, const char *root, const char *undo_dir)
{
	struct rng r;
	struct undo u;
	struct tbuf b = { 0 };
	size_t n, k, *idx, nedit = 0, nappend = 0, ndel = 0, nnew;
	char **files = read_lines(&n);
	uint64_t bytes_changed = 0;
	char cwd_undo[4096];

	if (!n)
		die("no files on stdin");
	/* the undo dir is given relative to the caller's cwd */
	if (undo_dir[0] != '/') {
		if (!getcwd(cwd_undo, sizeof(cwd_undo) - strlen(undo_dir) - 2))
			die("getcwd");
		strcat(cwd_undo, "/");
		strcat(cwd_undo, undo_dir);
		undo_dir = cwd_undo;
	}
	if (chdir(root) < 0)
		die("cannot enter '%s'", root);
	rng_seed(&r, seed, "mutate");
	undo_open(&u, undo_dir);
	idx = xmalloc(n * sizeof(*idx));
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	shuffle(&r, idx, n);
	k = (n + 50) / 100;
	if (!k)
		k = 1;
	for (size_t i = 0; i < k; i++) {
		const char *path = files[idx[i]];
		uint64_t what = rng_below(&r, 10);
		size_t size = (size_t)file_size(path);

		undo_save_file(&u, path);
		if (what < 4) {
			size_t off = size / 4 + (size_t)rng_below(&r, size / 2 + 1);
			size_t del = (size_t)rng_below(&r, 201), ins = (size_t)rng_range(&r, 1, 400);

			b.len = 0;
			tb_text(&b, &r, ins);
			splice_file(path, off, del, b.p, b.len);
			bytes_changed += size;
			nedit++;
		} else if (what < 7) {
			FILE *f = xfopen(path, "ab");

			b.len = 0;
			tb_text(&b, &r, (size_t)rng_range(&r, 64, 8192));
			xfwrite(b.p, b.len, f, path);
			xfclose(f, path);
			bytes_changed += size + b.len;
			nappend++;
		} else {
			if (unlink(path) < 0)
				die("cannot delete '%s'", path);
			ndel++;
		}
	}
	nnew = k / 5 ? k / 5 : 1;
	for (size_t i = 0; i < nnew; i++) {
		const char *near = files[rng_below(&r, n)], *slash = strrchr(near, '/');
		char path[4096];

		snprintf(path, sizeof(path), "%.*skeel-bench-new-%" PRIu64 "-%zu.txt",
			 slash ? (int)(slash - near + 1) : 0, near, seed, i);
		if (access(path, F_OK) == 0)
			continue;
		b.len = 0;
		tb_text(&b, &r, (size_t)rng_range(&r, 512, 32768));
		/* the directory may be gone if its only files were deleted: skip */
		{
			FILE *f = fopen(path, "wbx");

			if (!f) {
				errno = 0;
				continue;
			}
			xfwrite(b.p, b.len, f, path);
			xfclose(f, path);
		}
		fprintf(u.log, "N %s\n", path);
		fflush(u.log);
		bytes_changed += b.len;
	}
	undo_close(&u);
	printf("mutate: %zu files listed, %zu edited in the middle, %zu appended, %zu deleted, %zu new; "
	       "%" PRIu64 " bytes in changed files\n",
	       n, nedit, nappend, ndel, nnew, bytes_changed);
	free(idx);
	free(b.p);
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(files);
	return 0;
}

/*
 * Rewrites about 1% of the 4 KiB blocks in place, as a guest file system
 * would: in runs of 1-32 consecutive blocks (mean 16.5) at random
 * block-aligned offsets, half with random bytes, half with text. Runs may
 * overlap; the count is of blocks written.
 */
static int cmd_mutate_image(uint64_t seed, const char *rel, const char *undo_dir)
{
	char *path = realpath(rel, NULL);

	if (!path)
		die("cannot find '%s'", rel);

	struct rng r;
	struct undo u;
	struct tbuf b = { 0 };
	uint64_t nblk = (uint64_t)file_size(rel) / BLK, want = (nblk + 50) / 100, done = 0, runs = 0;
	int fd = path ? open(path, O_RDWR) : -1;
	uint8_t *old = xmalloc(32 * BLK);

	if (fd < 0)
		die("cannot open '%s'", path);
	if (!nblk)
		die("'%s' is smaller than one block", path);
	rng_seed(&r, seed, "mutate-image");
	undo_open(&u, undo_dir);
	while (done < want) {
		uint64_t len = rng_range(&r, 1, 32), at = rng_below(&r, nblk);
		char sp[4096];

		if (len > want - done)
			len = want - done;
		if (at + len > nblk)
			at = nblk - len;
		if (pread(fd, old, len * BLK, (off_t)(at * BLK)) != (ssize_t)(len * BLK))
			die("cannot read '%s'", path);
		snprintf(sp, sizeof(sp), "%s/s%u", u.dir, u.n);
		write_all(sp, old, len * BLK);
		fprintf(u.log, "B %u %" PRIu64 " %" PRIu64 " %s\n", u.n++, at * BLK, len * BLK, path);
		fflush(u.log);
		b.len = 0;
		if (rng_below(&r, 2)) {
			tb_reserve(&b, len * BLK);
			rng_fill(&r, (uint8_t *)b.p, len * BLK);
			b.len = len * BLK;
		} else {
			tb_text(&b, &r, len * BLK);
		}
		if (pwrite(fd, b.p, len * BLK, (off_t)(at * BLK)) != (ssize_t)(len * BLK))
			die("cannot write '%s'", path);
		done += len;
		runs++;
	}
	if (close(fd) < 0)
		die("cannot close '%s'", path);
	undo_close(&u);
	printf("mutate-image %s: %" PRIu64 " of %" PRIu64 " blocks rewritten in %" PRIu64 " runs\n", path, done,
	       nblk, runs);
	free(old);
	free(b.p);
	free(path);
	return 0;
}

/*
 * A dump taken a day later: about 1% more rows, half inserted at a few
 * places in the middle (new rows of existing tables), half appended.
 */
static int cmd_mutate_sql(uint64_t seed, const char *rel, const char *undo_dir)
{
	char *path = realpath(rel, NULL);

	if (!path)
		die("cannot find '%s'", rel);

	struct rng r;
	struct undo u;
	struct tbuf b = { 0 };
	size_t n, nlines = 0, want, added = 0;
	uint8_t *old = read_all(path ? path : rel, &n);
	FILE *f;
	size_t cuts[8];
	int ncut = 8;

	rng_seed(&r, seed, "mutate-sql");
	for (size_t i = 0; i < n; i++)
		nlines += old[i] == '\n';
	want = (nlines + 50) / 100;
	undo_open(&u, undo_dir);
	undo_save_file(&u, path);
	/* cut points: line starts at sorted random offsets in the 2nd..4th quarter */
	for (int i = 0; i < ncut; i++) {
		size_t at = n / 4 + (size_t)rng_below(&r, n / 2 + 1);

		while (at < n && at > 0 && old[at - 1] != '\n')
			at++;
		cuts[i] = at;
	}
	for (int i = 1; i < ncut; i++)
		for (int j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
			size_t t = cuts[j];

			cuts[j] = cuts[j - 1];
			cuts[j - 1] = t;
		}
	f = xfopen(path, "wb");
	{
		size_t prev = 0;
		uint64_t id = 900000000;

		for (int i = 0; i <= ncut; i++) {
			size_t at = i < ncut ? cuts[i] : n;
			size_t rows = i < ncut ? want / 2 / (size_t)ncut : want - added;

			xfwrite(old + prev, at - prev, f, path);
			prev = at;
			b.len = 0;
			for (size_t k = 0; k < rows; k++)
				sql_row(&b, &r, (int)rng_below(&r, 3), ++id, 1000);
			xfwrite(b.p, b.len, f, path);
			added += rows;
		}
	}
	xfclose(f, path);
	undo_close(&u);
	printf("mutate-sql %s: %zu lines, %zu rows added (%d places in the middle, rest appended)\n", path, nlines,
	       added, ncut);
	free(old);
	free(b.p);
	free(path);
	return 0;
}

static int cmd_revert(const char *undo_dir, const char *root)
{
	char p[4096], **lines;
	size_t n = 0, cap = 0, restored = 0;
	FILE *log;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	char abs_undo[4096];

	if (undo_dir[0] != '/') {
		if (!getcwd(abs_undo, sizeof(abs_undo) - strlen(undo_dir) - 2))
			die("getcwd");
		strcat(abs_undo, "/");
		strcat(abs_undo, undo_dir);
		undo_dir = abs_undo;
	}
	snprintf(p, sizeof(p), "%s/log", undo_dir);
	log = fopen(p, "r");
	if (!log) {
		if (errno == ENOENT) {
			printf("revert: nothing to undo\n");
			return 0;
		}
		die("cannot open '%s'", p);
	}
	lines = NULL;
	while ((len = getline(&line, &lcap, log)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = 0;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			lines = realloc(lines, cap * sizeof(*lines));
			if (!lines)
				die("out of memory");
		}
		lines[n++] = strdup(line);
	}
	free(line);
	fclose(log);
	if (chdir(root) < 0)
		die("cannot enter '%s'", root);
	for (size_t i = n; i-- > 0;) {
		char *l = lines[i], *path;
		unsigned num;
		uint64_t off, blen;
		int pos = 0;

		if (l[0] == 'M' && sscanf(l, "M %u %n", &num, &pos) == 1 && pos) {
			size_t sn;
			uint8_t *old;

			path = l + pos;
			snprintf(p, sizeof(p), "%s/s%u", undo_dir, num);
			old = read_all(p, &sn);
			write_all(path, old, sn);
			free(old);
		} else if (l[0] == 'N' && l[1] == ' ') {
			if (unlink(l + 2) < 0 && errno != ENOENT)
				die("cannot delete '%s'", l + 2);
			errno = 0;
		} else if (l[0] == 'B' && sscanf(l, "B %u %" SCNu64 " %" SCNu64 " %n", &num, &off, &blen, &pos) == 3 &&
			   pos) {
			size_t sn;
			uint8_t *old;
			int fd;

			path = l + pos;
			snprintf(p, sizeof(p), "%s/s%u", undo_dir, num);
			old = read_all(p, &sn);
			fd = open(path, O_WRONLY);
			if (fd < 0 || sn != blen || pwrite(fd, old, sn, (off_t)off) != (ssize_t)sn || close(fd) < 0)
				die("cannot restore blocks of '%s'", path);
			free(old);
		} else {
			errno = 0;
			die("bad undo log line '%s'", l);
		}
		restored++;
		free(l);
	}
	free(lines);
	/* the log is spent: remove it and the saved bytes */
	for (unsigned i = 0;; i++) {
		snprintf(p, sizeof(p), "%s/s%u", undo_dir, i);
		if (unlink(p) < 0)
			break;
	}
	snprintf(p, sizeof(p), "%s/log", undo_dir);
	unlink(p);
	errno = 0;
	printf("revert: %zu changes undone\n", restored);
	return 0;
}

static void usage(void)
{
	fputs("usage: keelgen image|sql|unique SEED MIB OUT\n"
	      "       keelgen files SEED COUNT DIR\n"
	      "       keelgen mutate SEED ROOT UNDO   (file list on stdin)\n"
	      "       keelgen mutate-image|mutate-sql SEED FILE UNDO\n"
	      "       keelgen revert UNDO ROOT\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (argc == 5 && !strcmp(cmd, "image"))
		return cmd_image(parse_u64(argv[2], "seed"), parse_u64(argv[3], "size"), argv[4]);
	if (argc == 5 && !strcmp(cmd, "sql"))
		return cmd_sql(parse_u64(argv[2], "seed"), parse_u64(argv[3], "size"), argv[4]);
	if (argc == 5 && !strcmp(cmd, "unique"))
		return cmd_unique(parse_u64(argv[2], "seed"), parse_u64(argv[3], "size"), argv[4]);
	if (argc == 5 && !strcmp(cmd, "files"))
		return cmd_files(parse_u64(argv[2], "seed"), parse_u64(argv[3], "count"), argv[4]);
	if (argc == 5 && !strcmp(cmd, "mutate"))
		return cmd_mutate(parse_u64(argv[2], "seed"), argv[3], argv[4]);
	if (argc == 5 && !strcmp(cmd, "mutate-image"))
		return cmd_mutate_image(parse_u64(argv[2], "seed"), argv[3], argv[4]);
	if (argc == 5 && !strcmp(cmd, "mutate-sql"))
		return cmd_mutate_sql(parse_u64(argv[2], "seed"), argv[3], argv[4]);
	if (argc == 4 && !strcmp(cmd, "revert"))
		return cmd_revert(argv[2], argv[3]);
	usage();
}
