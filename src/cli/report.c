/* Warnings and the progress line, as commands show them. */
#include <time.h>

#include "cli.h"

void kl_cli_print_path(FILE *f, const char *p)
{
	/* paths are bytes: escape what would garble a terminal */
	for (; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

void kl_cli_report_clear(struct kl_cli_report *r)
{
	if (r->line_shown) {
		fputs("\r\033[K", stderr);
		r->line_shown = false;
	}
}

static void on_warn(void *ud, const char *path, int err, const char *what)
{
	struct kl_cli_report *r = ud;

	r->warnings++;
	kl_cli_report_clear(r);
	if (r->cli->json) {
		fprintf(stderr, "{\"message_type\":\"error\",\"path\":");
		kl_json_cstr(stderr, path);
		fprintf(stderr, ",\"error\":");
		kl_json_cstr(stderr, err ? kl_strerror(err) : NULL);
		fprintf(stderr, ",\"what\":");
		kl_json_cstr(stderr, what);
		fprintf(stderr, "}\n");
		return;
	}
	fprintf(stderr, "keel: %s: ", r->cli->cmd_name ? r->cli->cmd_name : "");
	if (path) {
		fputc('\'', stderr);
		kl_cli_print_path(stderr, path);
		fputs("': ", stderr);
	}
	fputs(what ? what : "error", stderr);
	if (err)
		fprintf(stderr, ": %s", kl_strerror(err));
	fputc('\n', stderr);
}

static void fmt_duration(char *out, size_t n, int64_t s)
{
	if (s >= 3600)
		snprintf(out, n, "%lld:%02lld:%02lld", (long long)(s / 3600),
			 (long long)(s / 60 % 60), (long long)(s % 60));
	else
		snprintf(out, n, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
}

/* The share done, 0..1, by bytes where the total is known, else by files; -1: unknown. */
static double fraction_done(const struct kl_progress *p)
{
	double f;

	if (p->last)
		return 1;
	if (p->bytes_total)
		f = (double)p->bytes_done / (double)p->bytes_total;
	else if (p->files_total)
		f = (double)p->files_done / (double)p->files_total;
	else
		return -1;
	return f > 1 ? 1 : f;
}

/* Seconds left at the rate so far; -1 when unknown (no total yet, too early). */
static double seconds_left(const struct kl_progress *p, double secs)
{
	if (p->last)
		return 0;
	if (!p->bytes_total || !p->bytes_done || secs < 1)
		return -1;
	if (p->bytes_done >= p->bytes_total)
		return 0;
	return (double)(p->bytes_total - p->bytes_done) * secs / (double)p->bytes_done;
}

/*
 * --json: restic's "status" objects on stdout, at most once a second and
 * once at the end; seconds_remaining and percent_done only when known.
 */
static void on_progress_json(void *ud, const struct kl_progress *p)
{
	struct kl_cli_report *r = ud;
	int64_t now = kl_time_mono_ns();
	double secs = (double)(now - r->start_ns) / KL_NSEC_PER_SEC;
	double frac = fraction_done(p), left = seconds_left(p, secs);

	if (!p->last && now < r->next_json_ns)
		return;
	r->next_json_ns = now + KL_NSEC_PER_SEC;
	printf("{\"message_type\":\"status\",\"seconds_elapsed\":%.3f", secs);
	if (left >= 0)
		printf(",\"seconds_remaining\":%.0f", left);
	if (frac >= 0)
		printf(",\"percent_done\":%.4f", frac);
	printf(",\"total_files\":%llu,\"files_done\":%llu,\"total_bytes\":%llu,"
	       "\"bytes_done\":%llu,\"error_count\":%llu,\"totals_final\":%s}\n",
	       (unsigned long long)p->files_total, (unsigned long long)p->files_done,
	       (unsigned long long)p->bytes_total, (unsigned long long)p->bytes_done,
	       (unsigned long long)p->errors, p->totals_final || p->last ? "true" : "false");
	fflush(stdout);
}

void kl_cli_report_json_status(struct kl_cli_report *r, struct kl_report *ops)
{
	if (r->cli->json && !r->cli->quiet)
		ops->progress = on_progress_json;
}

static void on_progress(void *ud, const struct kl_progress *p)
{
	struct kl_cli_report *r = ud;
	int64_t el = kl_time_mono_ns() - r->start_ns;
	double secs = (double)el / KL_NSEC_PER_SEC;
	char done[32], rate[32], elapsed[32], eta[48] = "", pct[16] = "";
	double frac = fraction_done(p), left = seconds_left(p, secs);

	if (!r->cli->progress)
		return;
	kl_print_bytes(done, sizeof(done), p->bytes_done);
	kl_print_bytes(rate, sizeof(rate),
		       secs > 0.2 ? (uint64_t)((double)p->bytes_done / secs) : 0);
	fmt_duration(elapsed, sizeof(elapsed), el / KL_NSEC_PER_SEC);
	if (left > 0) {
		char t[32];

		fmt_duration(t, sizeof(t), (int64_t)left);
		snprintf(eta, sizeof(eta), ", ETA %s", t);
	}
	if (frac >= 0)
		snprintf(pct, sizeof(pct), "%.1f%% ", frac * 100);
	if (p->files_total)
		fprintf(stderr, "\r\033[K[%s] %s%llu/%llu %s, %s, %s/s%s", elapsed, pct,
			(unsigned long long)p->files_done, (unsigned long long)p->files_total,
			r->unit, done, rate, eta);
	else
		fprintf(stderr, "\r\033[K[%s] %llu %s, %s, %s/s%s", elapsed,
			(unsigned long long)p->files_done, r->unit, done, rate, eta);
	if (p->errors)
		fprintf(stderr, ", %llu errors", (unsigned long long)p->errors);
	r->line_shown = true;
}

void kl_cli_report_init(struct kl_cli_report *r, struct kl_cli *cli, struct kl_report *ops)
{
	memset(r, 0, sizeof(*r));
	r->cli = cli;
	r->start_ns = kl_time_mono_ns();
	r->unit = "files";
	ops->warn = on_warn;
	ops->progress = cli->progress ? on_progress : NULL;
	ops->ud = r;
}

void kl_cli_report_done(struct kl_cli_report *r)
{
	kl_cli_report_clear(r);
}
