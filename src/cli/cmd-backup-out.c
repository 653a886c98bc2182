/*
 * What keel backup prints: with -v the parent snapshot and each new or
 * changed file, with -vv every file (to stdout, as restic and borg
 * --list do; JSON lines "verbose_status" under --json), notes of what was
 * left out on purpose (stderr), and the summary.
 */
#include "cmd-backup.h"

static const char *item_word(enum kl_backup_item what)
{
	switch (what) {
	case KL_BACKUP_ITEM_NEW:
		return "new";
	case KL_BACKUP_ITEM_CHANGED:
		return "changed";
	default:
		return "unmodified";
	}
}

/* stdout and the progress line on stderr share a terminal: clear, print, flush */
static void before_line(struct kl_cli_backup_out *out)
{
	kl_cli_report_clear(out->rep);
}

static void after_line(struct kl_cli_backup_out *out)
{
	if (out->cli->progress)
		fflush(stdout);
}

static void on_parent(void *ud, const struct kl_id *parent)
{
	struct kl_cli_backup_out *out = ud;
	char hex[2 * KL_ID_LEN + 1];

	if (out->cli->json)
		return; /* the summary names it */
	before_line(out);
	if (parent) {
		kl_id_hex(parent, hex);
		printf("using parent snapshot %.8s\n", hex);
	} else {
		printf("no parent snapshot: every file is read\n");
	}
	after_line(out);
}

static void on_item(void *ud, enum kl_backup_item what, const char *path, uint64_t size)
{
	struct kl_cli_backup_out *out = ud;

	if (out->cli->json) {
		printf("{\"message_type\":\"verbose_status\",\"action\":\"%s\",\"item\":",
		       item_word(what));
		kl_json_cstr(stdout, path);
		printf(",\"data_size\":%llu}\n", (unsigned long long)size);
		return;
	}
	before_line(out);
	printf("%-10s ", item_word(what));
	kl_cli_print_path(stdout, path);
	putchar('\n');
	after_line(out);
}

static void on_note(void *ud, const char *path, const char *what)
{
	struct kl_cli_backup_out *out = ud;

	if (out->cli->json) {
		fprintf(stderr, "{\"message_type\":\"note\",\"path\":");
		kl_json_cstr(stderr, path);
		fprintf(stderr, ",\"what\":\"skipped: it is %s\"}\n", what);
		return;
	}
	if (out->cli->quiet)
		return;
	kl_cli_report_clear(out->rep);
	fprintf(stderr, "keel: backup: note: '");
	kl_cli_print_path(stderr, path);
	fprintf(stderr, "' skipped: it is %s\n", what);
}

void kl_cli_backup_listen(struct kl_cli_backup_out *out, struct kl_backup_opts *o)
{
	struct kl_cli *cli = out->cli;

	o->listen.ud = out;
	o->listen.note = on_note;
	if (cli->verbose > 0 && !cli->quiet) {
		o->listen.parent = on_parent;
		o->listen.item = on_item;
		o->listen.item_level = cli->verbose;
	}
}

static void summary_json(struct kl_cli_backup_out *out, const struct kl_backup_result *res,
			 double secs)
{
	const struct kl_snapshot_stats *s = &res->stats;

	printf("{\"message_type\":\"summary\",\"snapshot_id\":");
	if (out->dry_run)
		printf("null,\"dry_run\":true");
	else
		kl_json_id(stdout, &res->id);
	printf(",\"partial\":%s,"
	       "\"files_new\":%llu,\"files_changed\":%llu,\"files_unmodified\":%llu,"
	       "\"dirs\":%llu,\"bytes_total\":%llu,\"bytes_read\":%llu,\"blobs_new\":%llu,"
	       "\"data_added\":%llu,\"data_stored\":%llu,\"errors\":%llu,"
	       "\"duration_seconds\":%.3f",
	       res->partial ? "true" : "false", (unsigned long long)s->files_new,
	       (unsigned long long)s->files_changed, (unsigned long long)s->files_unmodified,
	       (unsigned long long)s->dirs, (unsigned long long)s->bytes_total,
	       (unsigned long long)s->bytes_read, (unsigned long long)s->blobs_new,
	       (unsigned long long)s->bytes_added, (unsigned long long)s->bytes_stored,
	       (unsigned long long)s->errors, secs);
	if (res->has_parent) {
		printf(",\"parent\":");
		kl_json_id(stdout, &res->parent);
	}
	printf("}\n");
}

void kl_cli_backup_summary(struct kl_cli_backup_out *out, const struct kl_backup_result *res,
			   int64_t ns)
{
	const struct kl_snapshot_stats *s = &res->stats;
	char hex[2 * KL_ID_LEN + 1], added[32], total[32], stored[32];
	double secs = (double)ns / KL_NSEC_PER_SEC;

	if (out->cli->json) {
		summary_json(out, res, secs);
		return;
	}
	if (out->cli->quiet)
		return;
	kl_id_hex(&res->id, hex);
	kl_print_bytes(added, sizeof(added), s->bytes_added);
	kl_print_bytes(total, sizeof(total), s->bytes_total);
	kl_print_bytes(stored, sizeof(stored), s->bytes_stored);
	printf("Files: %llu new, %llu changed, %llu unmodified\n", (unsigned long long)s->files_new,
	       (unsigned long long)s->files_changed, (unsigned long long)s->files_unmodified);
	printf("Dirs:  %llu\n", (unsigned long long)s->dirs);
	printf("%s to the repository: %s (%s stored)\n", out->dry_run ? "Would be added" : "Added",
	       added, stored);
	printf("processed %llu files, %s in %.2f s\n",
	       (unsigned long long)(s->files_new + s->files_changed + s->files_unmodified), total,
	       secs);
	if (out->dry_run)
		printf("dry run: nothing saved (no data, no snapshot)%s\n",
		       res->partial ? ", and some files or directories could not be read" : "");
	else if (res->partial)
		printf("snapshot %.8s saved, but %llu files or directories could not be read\n",
		       hex, (unsigned long long)s->errors);
	else
		printf("snapshot %.8s saved\n", hex);
}
