/*
 * Databases in a keel repository (docs/DATABASES.md): PostgreSQL base
 * backups through the replication protocol, their restore, and the list
 * of the databases a repository holds.
 */
#ifndef KEEL_DB_H
#define KEEL_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/ops.h"

/* ---- tar streams (src/db/tar.c) ---------------------------------------------------- */

/* One archive member, as its headers (ustar, GNU long names, pax) give it. */
struct kl_tar_entry {
	const char *path; /* cleaned: relative, no "." or ".." or empty parts; "" = the top */
	const char *link; /* symlinks: the target */
	uint32_t type;	  /* KL_NODE_FILE, KL_NODE_DIR or KL_NODE_SYMLINK */
	uint32_t mode;	  /* & 07777 */
	uint32_t uid, gid;
	const char *user, *group; /* "" when the header has none */
	int64_t mtime;
	uint64_t size; /* files: bytes of data that follow */
};

struct kl_tar_ops {
	/* A member begins; for files, its data follows through data(). */
	int (*entry)(void *ud, const struct kl_tar_entry *e);
	int (*data)(void *ud, const uint8_t *p, size_t n);
	/* The member's data is complete. */
	int (*end)(void *ud);
};

#define KL_TAR_BLOCK 512
#define KL_TAR_MAX_NAME 4096 /* long names (GNU 'L'/'K', pax path) */
#define KL_TAR_MAX_PAX (1 << 16)

/* A push parser: bytes go in as they arrive, in pieces of any size. */
struct kl_tar {
	const struct kl_tar_ops *ops;
	void *ud;
	uint8_t hdr[KL_TAR_BLOCK];
	size_t hdr_fill;
	uint64_t data_left; /* of the current member's data */
	uint64_t pad_left;  /* zeros after it, to the next block */
	int ext;	    /* 0, or the extension header ('L', 'K', 'x', 'g') being read */
	struct kl_buf ext_buf;
	char *long_name, *long_link; /* from 'L'/'K' or pax, for the next member */
	bool has_pax_size;
	uint64_t pax_size;
	bool in_member; /* a member's entry() was called, end() not yet */
	bool ended;	/* a zero block was seen: the archive is over */
	int error;	/* sticky */
};

void kl_tar_init(struct kl_tar *t, const struct kl_tar_ops *ops, void *ud);
/* Feeds n bytes. Returns 0, -KL_ECORRUPT for a malformed archive, or a callback's error. */
int kl_tar_feed(struct kl_tar *t, const uint8_t *p, size_t n);
/* The stream is over: 0 if it ended between members, else -KL_ECORRUPT. */
int kl_tar_finish(struct kl_tar *t);
void kl_tar_release(struct kl_tar *t);

/* ---- PostgreSQL replication messages (src/db/pg-msg.c) ------------------------------ */

/*
 * The decoders below read one CopyData message as the server sent it and
 * copy nothing: pointers in the result point into the message. They
 * return 0, or -KL_ECORRUPT for an empty message, an unknown type byte
 * (->type says which) or a known type that is too short.
 */

/* START_REPLICATION's stream: 'w' XLogData or 'k' a keepalive. */
struct kl_pgm_stream {
	uint8_t type;	     /* the first byte; 0 for an empty message */
	uint64_t start_lsn;  /* 'w': the LSN of data[0] */
	uint64_t end_lsn;    /* the server's end of WAL */
	int64_t send_time;   /* microseconds since 2000-01-01 */
	const uint8_t *data; /* 'w': the WAL bytes */
	size_t len;
	bool reply; /* 'k': the server asks for a status update now */
};
int kl_pgm_stream_decode(const uint8_t *p, size_t n, struct kl_pgm_stream *ret);

/* BASE_BACKUP's CopyOut: 'n' a new archive, 'd' data, 'p' progress, 'm' the manifest begins. */
struct kl_pgm_backup {
	uint8_t type;		     /* the first byte; 0 for an empty message */
	const char *name, *location; /* 'n': NUL-terminated inside the message */
	const uint8_t *data;	     /* 'd': the archive's or the manifest's bytes (len may be 0) */
	size_t len;
	uint64_t progress; /* 'p': bytes sent so far (exactly 8 bytes after the type) */
};
int kl_pgm_backup_decode(const uint8_t *p, size_t n, struct kl_pgm_backup *ret);

/*
 * A timeline history file (TIMELINE_HISTORY's content, pg_wal/N.history):
 * one line per ancestor, "parent-timeline <tab> switch-LSN <tab> reason",
 * '#' comments and blank lines allowed. Timelines must increase and LSNs
 * must not go back. Returns 0 with *n_ret entries (oldest first), or
 * -KL_ECORRUPT for a malformed file or one of more than max entries.
 */
struct kl_pg_switch {
	uint32_t tli;	  /* this timeline ... */
	uint64_t end_lsn; /* ... ended here; the next one starts */
};
#define KL_PG_HISTORY_MAX 256

/*
 * The long page header at the start of a WAL segment file, as an x86
 * or other little-endian server writes it: 0, or -KL_ECORRUPT when the
 * first 40 bytes are missing or not a long header (XLP_LONG_HEADER).
 */
struct kl_pgm_walhdr {
	uint16_t magic; /* the server version's WAL magic (0xD110 for PostgreSQL 15) */
	uint32_t tli;
	uint64_t pageaddr; /* the segment's first LSN */
	uint64_t sysid;
	uint32_t seg_size, block_size;
};
int kl_pgm_walhdr_decode(const uint8_t *p, size_t n, struct kl_pgm_walhdr *ret);
int kl_pgm_history_parse(const char *p, size_t n, struct kl_pg_switch *v, size_t max,
			 size_t *n_ret);

/* ---- MariaDB's binary log (src/db/binlog.c) ------------------------------------------ */

/*
 * Binary log events as a server sends them to a replica (COM_BINLOG_DUMP)
 * and as its files hold them: a 19-byte header (timestamp, type,
 * server_id, size, log_pos = the event's end in its file, flags), a body,
 * and with binlog_checksum = CRC32 a 4-byte checksum. These decoders read
 * bytes from the network or a repository and trust nothing in them.
 */
#define KL_BINLOG_MAGIC "\376bin" /* octal: a hex escape would take the b */
#define KL_BINLOG_MAGIC_LEN 4
#define KL_BINLOG_HDR 19
#define KL_BINLOG_EVENT_MAX (1u << 30) /* max_allowed_packet's ceiling */
enum kl_binlog_type {
	KL_BINLOG_QUERY = 2,
	KL_BINLOG_STOP = 3,
	KL_BINLOG_ROTATE = 4,
	KL_BINLOG_FORMAT = 15, /* format description */
	KL_BINLOG_XID = 16,
	KL_BINLOG_HEARTBEAT = 27,
};
#define KL_BINLOG_F_IN_USE 0x1	    /* format description: the file is being written */
#define KL_BINLOG_F_ARTIFICIAL 0x20 /* made up by the sending server, in no file */

struct kl_binlog_event {
	uint32_t timestamp; /* seconds since the epoch */
	uint8_t type;
	uint32_t server_id;
	uint32_t size;	  /* of the whole event */
	uint32_t log_pos; /* its end in its file; 0: in no file */
	uint16_t flags;
};
/* The header of the n-byte event p: 0, or -KL_ECORRUPT (short, or size != n). */
int kl_binlog_event_decode(const uint8_t *p, size_t n, struct kl_binlog_event *ret);
/*
 * A format description event's checksum algorithm (0 none, 1 CRC32):
 * 0, or -KL_ECORRUPT for one too short or of binlog version other than 4.
 */
int kl_binlog_format_decode(const uint8_t *p, size_t n, uint8_t *alg_ret);
/*
 * A rotate event's next file (NUL-terminated into name, of size bytes)
 * and position there (a trailing checksum is recognised as one). 0, or
 * -KL_ECORRUPT for a malformed event or a name kl_db_binlog_name_valid refuses.
 */
int kl_binlog_rotate_decode(const uint8_t *p, size_t n, char *name, size_t size, uint64_t *pos_ret);
/* The number at the end of a binlog file's name ("bin.000042": 42); -KL_ECORRUPT if none. */
int kl_binlog_file_number(const char *name, uint32_t *ret);
/* Whether event p's checksum is right (a format description's ignores its in-use flag). */
bool kl_binlog_checksum_ok(const uint8_t *p, size_t n);

/*
 * Following one server's binary log as a replica receives it: which
 * events belong to the file being followed, at which offset, and when
 * the server has moved on to the next file.
 */
struct kl_binlog_follow {
	char file[KL_BINLOG_NAME_MAX + 1]; /* the file being followed */
	uint32_t file_no;
	uint64_t have; /* its bytes received, the magic included */
	uint8_t alg;   /* its checksum algorithm, from a format description */
	bool ended;    /* a stop or rotate event ended it */
	/*
	 * The file the server goes on to, and where: set with KL_BINLOG_NEXT,
	 * and with KL_BINLOG_APPEND of the rotate event that ends the file
	 * (the file is complete then too); "" otherwise.
	 */
	char next[KL_BINLOG_NAME_MAX + 1];
	uint64_t next_pos;
};
enum kl_binlog_step {
	KL_BINLOG_SKIP = 0,   /* not part of the file: made up, a heartbeat, or sent again */
	KL_BINLOG_APPEND = 1, /* the file's next event: append it (have includes it now) */
	KL_BINLOG_NEXT = 2,   /* the file is complete; the server goes on with f->next */
};
/* Starts following file at offset have (>= 4: the magic is the caller's). */
int kl_binlog_follow_init(struct kl_binlog_follow *f, const char *file, uint64_t have);
/*
 * One event as the server sent it. Returns a kl_binlog_step, or
 * -KL_ECORRUPT for a malformed event or one beyond what was received (a hole).
 */
int kl_binlog_follow_step(struct kl_binlog_follow *f, const uint8_t *p, size_t n,
			  struct kl_binlog_event *ev_ret);

/* ---- PostgreSQL (src/db/pg-*.c) ------------------------------------------------------ */

struct kl_db_backup_opts {
	const char *conninfo; /* libpq connection string; replication=true is added */
	const char *name;     /* NULL: "pg-SYSTEMID" */
	const char *host;     /* NULL: this host's name */
	const char *slot;     /* the stream's replication slot; NULL: keel_NAME */
	bool create_slot;     /* create it (if missing) before the backup, so it keeps its WAL */
	unsigned threads;
	struct kl_report report; /* warn: no slot keeps the WAL from the backup on */
};

struct kl_db_backup_result {
	struct kl_id id;
	char name[KL_DB_NAME_MAX + 1];
	char system_id[32];
	uint32_t timeline;
	uint64_t start_lsn, stop_lsn;
	struct kl_snapshot_stats stats;
	bool slot_created;  /* create_slot made it */
	bool slot_reserved; /* the slot keeps WAL: a stream started later has no gap */
	/* MariaDB: the consistent binary log position */
	char binlog_file[256];
	char gtid[256];
};

/*
 * Takes a base backup of the server CONNINFO names into a snapshot of
 * kind 4. Errors: -KL_EDBCONNECT (cannot connect), -KL_EDBSERVER (the
 * server refused or broke off), or the repository's; the message is in
 * the repository's error context.
 */
int kl_db_backup(struct kl_repo *r, const struct kl_db_backup_opts *o,
		 struct kl_db_backup_result *ret);

struct kl_db_restore_opts {
	const char *name;
	const char *target;
	/* the target: the newest moment stored, or a time, or an LSN */
	bool latest;
	const char *time; /* as recovery_target_time, with an offset */
	/* MariaDB: the zone of a time without an offset (NULL: the server's, as recorded) */
	const char *time_zone;
	bool has_lsn;
	uint64_t lsn; /* MariaDB: --position FILE:POS as file_number << 32 | offset */
	/* MariaDB: the base backup (a snapshot id prefix; NULL: chosen by the target) */
	const char *base;
	/* MariaDB: replay the binlog files of this directory (NULL: the repository's) */
	const char *binlog_dir;
	bool dump; /* MariaDB: write the newest logical dump (or o->base) to the file target */
	unsigned threads;
	struct kl_report report;
};
int kl_db_restore(struct kl_repo *r, const struct kl_db_restore_opts *o, struct kl_id *base_ret);

struct kl_db_stream_opts {
	const char *conninfo;
	const char *name; /* NULL: "pg-SYSTEMID" */
	const char *slot; /* NULL: keel_NAME (lowercase, '_' for other characters) */
	const char *host;
	int stop_fd; /* readable: store what was received and stop (the CLI makes a signal do that);
			-1: none */
	unsigned threads;
	/*
	 * Store and confirm what arrived at once, not once a second: the server
	 * may wait for keel (synchronous_standby_names naming its application_name).
	 */
	bool synchronous;
	/* MariaDB: "FILE:POS", where a first stream of the database starts (NULL: see DATABASES.md)
	 */
	const char *start;
	struct kl_report report; /* warn: the connection was lost, reconnecting */
	/*
	 * MariaDB: called after each log record is durable in the repository,
	 * with where the binary log stored so far ends ("FILE:OFFSET"), so a
	 * caller can tell when a commit is safe (NULL: not called).
	 */
	void (*stored)(void *ud, const char *position);
	void *stored_ud;
};
struct kl_db_stream_result {
	uint64_t stop_lsn; /* durable in the repository and confirmed to the server */
	uint32_t timeline; /* of stop_lsn */
	uint64_t records;
	uint64_t folded; /* records removed once their segment was stored whole */
	char position[KL_BINLOG_NAME_MAX + 24]; /* MariaDB: stop_lsn as FILE:OFFSET; else "" */
};
/*
 * Streams WAL into log records (kind 5) until o->stop_fd is readable
 * (returns 0) or fails (< 0). It follows timeline switches and reconnects
 * (with backoff, until a stop) when the connection is lost; an error the
 * server reports (the slot is gone, WAL was removed) ends it.
 */
int kl_db_stream(struct kl_repo *r, const struct kl_db_stream_opts *o,
		 struct kl_db_stream_result *ret);

/* logical dumps (src/db/pg-dump.c) */
struct kl_db_dump_opts {
	const char *conninfo; /* libpq connection string (a password in it goes as PGPASSWORD) */
	const char *name;     /* NULL: "pg-SYSTEMID" */
	const char *host;
	const char *pg_dump, *pg_dumpall; /* NULL: found in PATH */
	unsigned threads;
};
struct kl_db_dump_result {
	struct kl_id id;
	char name[KL_DB_NAME_MAX + 1];
	uint64_t databases;
	struct kl_snapshot_stats stats;
};
/*
 * pg_dumpall --globals-only and pg_dump -Fc of every database (not
 * templates) into one snapshot of kind 4, role 3: globals.sql and
 * databases/NAME.dump, tags db, db:NAME and db-dump. Errors:
 * -KL_EDBCONNECT, -KL_EDBSERVER, -KL_ECMD (a tool failed: nothing stored).
 */
int kl_db_dump(struct kl_repo *r, const struct kl_db_dump_opts *o, struct kl_db_dump_result *ret);

/* archive_command and restore_command (src/db/pg-archive.c) */
struct kl_db_wal_opts {
	const char *name; /* the database's name in the repository (required) */
	const char *host;
	unsigned threads;
};
struct kl_db_wal_result {
	bool skipped; /* wal-push: not a segment or history file (.backup, .partial): nothing stored
		       */
	bool already; /* wal-push: stored before with the same bytes */
	uint64_t start_lsn, stop_lsn;
	uint32_t timeline;
};
/*
 * Stores the WAL segment or timeline history file at path as a log
 * record of o->name, unless a complete copy with the same bytes is
 * stored. -EEXIST if one with other bytes is, -KL_ECORRUPT if the file
 * is not what its name says, -KL_EUSAGE for another cluster's.
 */
int kl_db_wal_push(struct kl_repo *r, const struct kl_db_wal_opts *o, const char *path,
		   struct kl_db_wal_result *ret);
/*
 * Writes the newest stored copy of WAL file `file` (a segment, zero-padded
 * to its size, or a history file) of o->name to dest. -KL_ENOTFOUND when
 * the repository has none.
 */
int kl_db_wal_get(struct kl_repo *r, const struct kl_db_wal_opts *o, const char *file,
		  const char *dest, struct kl_db_wal_result *ret);

/* keel db check (src/db/check.c) */
struct kl_db_check_opts {
	const char *name;
	/* the file remembering what was verified (NULL: none, verify everything) */
	const char *state_path;
	bool all;		 /* verify everything, whatever the state file says */
	struct kl_report report; /* warn: each gap (path NULL) and each damaged snapshot (its id) */
};
struct kl_db_check_result {
	size_t snapshots; /* of the database */
	size_t verified;  /* read back by this run */
	uint64_t bytes_read;
	size_t gaps, damaged;
	/*
	 * MariaDB ("" otherwise): the binary log checked, from the start of the
	 * oldest base backup's file to the end stored, and that base backup's
	 * consistent position and GTID, as FILE:OFFSET (offset 0: the start).
	 */
	char log_from[KL_BINLOG_NAME_MAX + 16], log_to[KL_BINLOG_NAME_MAX + 16];
	char base_position[KL_BINLOG_NAME_MAX + 16], base_gtid[256];
};
/*
 * Checks the log's continuity per timeline (history files join them) from
 * the oldest base backup on, and reads back every snapshot of o->name
 * that the state file does not list as verified, then rewrites the state
 * file. Returns 0, -KL_ECORRUPT if a snapshot is damaged, -KL_EDBGAP if
 * the log has a gap, -KL_ENOTFOUND for an unknown name.
 */
int kl_db_check(struct kl_repo *r, const struct kl_db_check_opts *o,
		struct kl_db_check_result *ret);

/*
 * Retention (src/db/retention.c): of the snapshots v[0..n), gone[i] marks
 * those a forget policy removes, touched[i] those it judged (a database
 * none of whose base backups the policy judged loses nothing). Sets
 * drop[i] for each log record (not a history file) of such a database
 * whose stop_lsn is at or before the start_lsn of its oldest kept base
 * backup, on that base backup's timeline or an earlier one; a database
 * with no kept base backup loses no record. Returns how many, or -ENOMEM.
 */
int kl_db_retention(const struct kl_snapshot_ref *v, size_t n, const bool *gone,
		    const bool *touched, bool *drop);

struct kl_db_info;
/*
 * A MariaDB position (file_number << 32 | offset) as the server names it,
 * "bin.000003:373", the stem from d's records or base backups.
 */
void kl_db_maria_pos_format(const struct kl_db_info *d, uint64_t pos, char *buf, size_t size);

/* "X/Y" as PostgreSQL writes an LSN; buf of at least 20 bytes. */
void kl_db_lsn_format(uint64_t lsn, char *buf, size_t size);
/* Parses "X/Y"; -KL_EUSAGE if it is not one. */
int kl_db_lsn_parse(const char *s, uint64_t *ret);

/* ---- SQLite's write-ahead log (src/db/sqlite-wal.c) --------------------------------- */

/*
 * The WAL file format (sqlite.org/fileformat2.html, "WAL file format"):
 * a 32-byte header, then frames of a 24-byte header and one page. Every
 * frame's checksum continues the one before it, from the header's, so a
 * frame is valid only if its salts are the header's and the chain holds
 * up to it. These decoders read bytes keel took from a live file (or a
 * repository) and trust nothing in them.
 */
#define KL_SQLITE_WAL_HDR 32
#define KL_SQLITE_FRAME_HDR 24

struct kl_sqlite_wal_hdr {
	bool big_endian; /* checksums over big-endian words (magic 0x377f0683) */
	uint32_t page_size, ckpt_seq, salt1, salt2;
	uint32_t s0, s1; /* the header's checksum: where the frames' chain starts */
};
/* Returns 0, or -KL_ECORRUPT (bad magic, version, page size or checksum, or n < 32). */
int kl_sqlite_wal_hdr_decode(const uint8_t *p, size_t n, struct kl_sqlite_wal_hdr *ret);
/* The 32 bytes of h's header; fills in h->s0 and h->s1. */
void kl_sqlite_wal_hdr_encode(struct kl_sqlite_wal_hdr *h, uint8_t out[KL_SQLITE_WAL_HDR]);

struct kl_sqlite_frame {
	uint32_t pgno;
	uint32_t db_pages; /* commit frames: the database's size in pages after it; else 0 */
};
/*
 * Checks frame f (KL_SQLITE_FRAME_HDR + page_size bytes) against h and
 * the chain so far (s[2], updated when it is valid). Returns 1 valid, 0 not.
 */
int kl_sqlite_frame_check(const struct kl_sqlite_wal_hdr *h, const uint8_t *f, uint32_t s[2],
			  struct kl_sqlite_frame *ret);
/* Rewrites f's salts to h's and its checksum to continue s[2] (restores write their own WAL). */
void kl_sqlite_frame_seal(const struct kl_sqlite_wal_hdr *h, uint8_t *f, uint32_t s[2]);

/* A log record's commit list ("wal/commits"): one "FRAME TIME_NS" line per commit. */
struct kl_sqlite_commit {
	uint32_t frame; /* the commit frame, 1-based in its generation */
	int64_t time_ns;
};
#define KL_SQLITE_COMMITS_MAX (1u << 20)
/*
 * Parses a commit list: frames strictly increasing within [first, last],
 * times not negative. *ret to kl_free. Returns 0 or -KL_ECORRUPT.
 */
int kl_sqlite_commits_parse(const uint8_t *p, size_t n, uint32_t first, uint32_t last,
			    struct kl_sqlite_commit **ret, size_t *n_ret);

/* ---- SQLite (src/db/sqlite-*.c) ------------------------------------------------------- */

/* Whether s is a sqlite:// URI (the CLI's db commands dispatch on it). */
bool kl_db_sqlite_uri(const char *s);
/*
 * The same operations as PostgreSQL's, for a SQLite database file named by
 * o->conninfo as sqlite:///PATH (docs/DATABASES.md, "SQLite"). Errors:
 * -KL_EDBCONNECT (the file cannot be opened, is not a database, or for
 * stream is not in WAL mode), -KL_EDBSERVER (SQLite refused an operation
 * or a restored file failed its integrity check).
 */
int kl_db_sqlite_backup(struct kl_repo *r, const struct kl_db_backup_opts *o,
			struct kl_db_backup_result *ret);
int kl_db_sqlite_stream(struct kl_repo *r, const struct kl_db_stream_opts *o,
			struct kl_db_stream_result *ret);
/* o->target is the new database file (it must not exist); --lsn is not supported. */
int kl_db_sqlite_restore(struct kl_repo *r, const struct kl_db_restore_opts *o,
			 struct kl_id *base_ret);
/* 1 if the database name in the repository is a SQLite one, 0 if not (or absent). */
int kl_db_sqlite_named(struct kl_repo *r, const char *name);

/* ---- mariabackup's xbstream (src/db/xbstream.c) ------------------------------------ */

/*
 * mariabackup --stream=xbstream writes chunks: "XBSTCK01", a flags byte,
 * a type byte ('P' payload, 'E' end of file), a 32-bit path length and
 * the path; a payload chunk then has a 64-bit length, a 64-bit offset in
 * the file, a CRC-32 of the payload and the payload (all little-endian).
 * The parser trusts nothing: fuzz/fuzz-xbstream.c.
 */
#define KL_XBS_MAX_PATH 4096
#define KL_XBS_HDR 14 /* magic, flags, type, path length */

struct kl_xbs_chunk {
	uint8_t type;	  /* 'P' or 'E' */
	const char *path; /* relative and clean (no "", "." or ".." parts) */
	uint64_t offset;  /* 'P': where the payload goes in the file */
	uint64_t len;	  /* 'P': the payload's length */
};

struct kl_xbs_ops {
	/* A chunk begins; a payload's bytes follow through data(). */
	int (*chunk)(void *ud, const struct kl_xbs_chunk *c);
	int (*data)(void *ud, const uint8_t *p, size_t n);
};

/* A push parser: bytes go in as they arrive, in pieces of any size. */
struct kl_xbs {
	const struct kl_xbs_ops *ops;
	void *ud;
	uint8_t hdr[KL_XBS_HDR + 20];
	size_t fill; /* bytes of hdr, or of path, read so far */
	int state;   /* what is being read */
	uint8_t type;
	uint32_t path_len;
	char path[KL_XBS_MAX_PATH + 1];
	uint64_t offset, len, left;
	uint32_t crc, want_crc;
	int error; /* sticky */
};

void kl_xbs_init(struct kl_xbs *x, const struct kl_xbs_ops *ops, void *ud);
/*
 * Feeds n bytes. Returns 0, -KL_ECORRUPT for a malformed stream (bad
 * magic, unknown chunk type, a path too long or not clean, a payload whose
 * CRC-32 does not match: the payload's bytes went to data() already, so
 * the caller must drop what it made of them), or a callback's error.
 */
int kl_xbs_feed(struct kl_xbs *x, const uint8_t *p, size_t n);
/* The stream is over: 0 if it ended between chunks, else -KL_ECORRUPT. */
int kl_xbs_finish(struct kl_xbs *x);
/* The CRC-32 of ISO 3309 (zlib's crc32): crc 0 to begin, then the running value. */
uint32_t kl_crc32(uint32_t crc, const uint8_t *p, size_t n);

/* ---- MariaDB (src/db/maria-*.c) ------------------------------------------------------ */

/* Whether s is a mariadb:// or mysql:// URI (the CLI's db commands dispatch on it). */
bool kl_db_maria_uri(const char *s);
/*
 * Streams the binary log of the server o->conninfo names into log records
 * (kind 5), byte for byte, until o->stop_fd is readable (0) or it fails
 * (docs/DATABASES.md, "MariaDB's binary log"). stop_lsn in ret is a
 * binlog position (file number << 32 | offset). Errors: -KL_EDBCONNECT,
 * -KL_EDBSERVER (binary logging off, the server refused the dump: a
 * purged file), -KL_EUSAGE.
 */
int kl_db_maria_stream(struct kl_repo *r, const struct kl_db_stream_opts *o,
		       struct kl_db_stream_result *ret);
/*
 * keel db binlog-get: writes the stored binary log files of name into dir
 * (it must exist), byte for byte as the server has them, from file `from`
 * (NULL: the oldest stored) up to stop_file:stop_pos (NULL: all stored),
 * and prints nothing. *n_ret: how many files. Errors: -KL_ENOTFOUND,
 * -KL_EDBGAP (a hole in that stretch), -KL_EUSAGE (bad names).
 */
int kl_db_binlog_get(struct kl_repo *r, const char *name, const char *from, const char *stop_file,
		     uint64_t stop_pos, const char *dir, size_t *n_ret);
/*
 * A hot physical backup of the server o->conninfo (a mariadb:// URI)
 * names: mariabackup --backup --stream=xbstream, parsed as it arrives,
 * into a kind-4 snapshot (tree data/ = mariabackup's files), with the
 * consistent binary log position (start_lsn = stop_lsn = file_number <<
 * 32 | offset, and binlog_file, gtid). keel must run on the server's
 * host. Errors: -KL_EUSAGE (bad URI), -KL_EDBCONNECT (cannot connect:
 * wrong user or password, no server), -KL_EDBSERVER (binary logging off,
 * mariabackup failed), -KL_ECMD (mariabackup not installed), the
 * repository's.
 */
int kl_db_maria_backup(struct kl_repo *r, const struct kl_db_backup_opts *o,
		       struct kl_db_backup_result *ret);
/*
 * Restores o->name into o->target (new or empty): the newest base backup
 * before the target (or o->base), mariabackup --prepare, and for --time
 * (o->time, "YYYY-MM-DD HH:MM:SS" local time) or --position (o->lsn) or
 * with o->binlog_dir the binary logs replayed by a temporary mariadbd on
 * a private socket. -KL_ENOTFOUND for a target the repository (or
 * binlog_dir) does not cover, with the range it does.
 */
int kl_db_maria_restore(struct kl_repo *r, const struct kl_db_restore_opts *o,
			struct kl_id *base_ret);
/*
 * mariadb-dump --single-transaction --all-databases --routines --events
 * --triggers into a kind-4 snapshot of role 3 (dump/all.sql, tags db,
 * db:NAME, db-dump). Errors as kl_db_maria_backup's.
 */
int kl_db_maria_dump(struct kl_repo *r, const struct kl_db_dump_opts *o,
		     struct kl_db_dump_result *ret);
/* --position "bin.000003:1234" as 3 << 32 | 1234; -KL_EUSAGE if it is not one. */
int kl_db_maria_position_parse(const char *s, uint64_t *ret);

/* ---- MariaDB time zones (src/db/maria-tz.c; docs/DATABASES.md "Time zones") ---- */

#define KL_MARIA_TZ_MAX 127
/* A zone: an IANA name of the system's zone database, else a fixed offset (0: UTC). */
struct kl_maria_tz {
	char name[KL_MARIA_TZ_MAX + 1];
	int32_t offset; /* seconds east of UTC, when name is "" */
	bool local;	/* keel's own zone (TZ, /etc/localtime): old snapshots record none */
};
/* "Europe/Berlin" (a zone file must exist), "UTC", "+02:00", "-0530", "+02": -KL_EUSAGE else. */
int kl_maria_tz_parse(const char *s, struct kl_maria_tz *ret);
/* As kl_maria_tz_parse reads it back: "Europe/Berlin", "UTC", "+02:00". */
void kl_maria_tz_format(const struct kl_maria_tz *z, char *buf, size_t size);
/* The value of TZ that gives a child process zone z. */
void kl_maria_tz_env(const struct kl_maria_tz *z, char *buf, size_t size);
/* z's offset from UTC (seconds east) at moment t (seconds since the epoch). */
int kl_maria_tz_offset(const struct kl_maria_tz *z, int64_t t, int32_t *ret);
/*
 * "YYYY-MM-DD HH:MM:SS" (or a 'T' between), local time in z, or followed by
 * 'Z' or an offset ("+02:00"), a moment whatever z: ns since the epoch.
 * -KL_EUSAGE if s is not such a time.
 */
int kl_maria_parse_time(const char *s, const struct kl_maria_tz *z, int64_t *ret);

/* 1 if the database name in the repository is a MariaDB one, 0 if not (or absent). */
int kl_db_maria_named(struct kl_repo *r, const char *name);

#define KL_MARIA_URI_MAX 4096

/*
 * mariadb://[USER@]HOST[:PORT][/][?socket=PATH&defaults-file=PATH]
 * (mysql:// alike). Percent escapes are decoded; a field absent is NULL
 * (port 0): the option file or the client library's default then applies.
 */
struct kl_maria_uri {
	char *user;
	char *host; /* "[::1]" is given as "::1" */
	unsigned port;
	char *socket;
	char *defaults_file;
};

/*
 * Parses s (untrusted: fuzz/fuzz-maria-uri.c). Returns 0, or -KL_EUSAGE
 * with *why (a static string) saying what is wrong: not such a URI, a
 * password in it (refused: it would be in argv and the shell's history),
 * a database path, an unknown or repeated parameter, a bad port or escape.
 * -ENOMEM. *ret to kl_maria_uri_release, also after an error.
 */
int kl_maria_uri_parse(const char *s, struct kl_maria_uri *ret, const char **why);
void kl_maria_uri_release(struct kl_maria_uri *u);
/*
 * u as a URI again (every field percent-escaped as needed), which parses
 * to the same fields. Returns 0, -E2BIG if it would not fit size bytes or
 * would be longer than KL_MARIA_URI_MAX (which the parser refuses).
 */
int kl_maria_uri_format(const struct kl_maria_uri *u, char *buf, size_t size);

/* ---- listing (src/db/list.c) ---------------------------------------------------------- */

struct kl_db_info {
	char *name;
	uint32_t engine;
	char *system_id;
	struct kl_snapshot_ref *bases; /* oldest first */
	size_t n_bases;
	struct kl_snapshot_ref *logs; /* log records, by stop_lsn */
	size_t n_logs;
	struct kl_snapshot_ref *dumps; /* logical dumps, oldest first */
	size_t n_dumps;
};
struct kl_db_list {
	struct kl_db_info *v; /* by name */
	size_t n;
	size_t n_damaged; /* snapshots that could not be read (may be databases') */
};
int kl_db_list(struct kl_repo *r, struct kl_db_list *ret);

/*
 * A SQLite database's restorable stretches (src/db/sqlite-restore.c):
 * every moment from each base copy to the last commit its chain of log
 * records holds; stretches that touch are merged, so what lies between
 * two is a gap. Oldest first; *ret to kl_free.
 */
struct kl_db_span {
	int64_t from_ns, to_ns;
};
int kl_db_sqlite_spans(const struct kl_db_info *d, struct kl_db_span **ret, size_t *n_ret);
/*
 * A MariaDB database's restorable stretches (src/db/maria-binlog.c): from
 * each base backup's end to the newest record of the binary log that
 * continues without a hole from the start of the base backup's binlog
 * file; stretches that touch are merged. Oldest first; *ret to kl_free.
 */
int kl_db_maria_spans(const struct kl_db_info *d, struct kl_db_span **ret, size_t *n_ret);
void kl_db_list_release(struct kl_db_list *l);
/* The database name in l, or NULL. */
const struct kl_db_info *kl_db_find(const struct kl_db_list *l, const char *name);

/*
 * The gaps in d's log from its oldest base backup on, per timeline (the
 * continuity part of kl_db_check): adds their count to *ret and gives
 * each to report->warn (path NULL) if report is not NULL. 0 or -ENOMEM.
 */
int kl_db_gaps(const struct kl_db_info *d, const struct kl_report *report, size_t *ret);
/*
 * SQLite's (src/db/sqlite-check.c): the holes between the chains of log
 * records that go on from each base copy (the same salts in a generation,
 * a new generation only where the one before ended or at a base copy), as
 * kl_db_gaps. 0 or -ENOMEM.
 */
int kl_db_sqlite_gaps(const struct kl_db_info *d, const struct kl_report *report, size_t *ret);
/*
 * Reads log record rec of d back and runs its frames along the WAL's
 * checksum chain from where the snapshot it continues stopped: 0, or
 * -KL_ECORRUPT when a frame does not continue it or the chain does not end
 * at the record's checksum, or the repository's error.
 */
int kl_db_sqlite_check_frames(struct kl_repo *r, const struct kl_db_info *d,
			      const struct kl_snapshot_ref *rec);

#endif
