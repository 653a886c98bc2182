/* Warnings and the progress line, as commands show them. */
#include <time.h>

#include "cli.h"

static void print_path(FILE *f, const char *p)
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
		print_path(stderr, path);
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

static void on_progress(void *ud, const struct kl_progress *p)
{
	struct kl_cli_report *r = ud;
	int64_t el = kl_time_mono_ns() - r->start_ns;
	double secs = (double)el / KL_NSEC_PER_SEC;
	char done[32], rate[32], elapsed[32], eta[48] = "";

	if (!r->cli->progress)
		return;
	kl_print_bytes(done, sizeof(done), p->bytes_done);
	kl_print_bytes(rate, sizeof(rate),
		       secs > 0.2 ? (uint64_t)((double)p->bytes_done / secs) : 0);
	fmt_duration(elapsed, sizeof(elapsed), el / KL_NSEC_PER_SEC);
	if (p->bytes_total && p->bytes_done && p->bytes_done < p->bytes_total && secs > 1) {
		double left =
			(double)(p->bytes_total - p->bytes_done) * secs / (double)p->bytes_done;
		char t[32];

		fmt_duration(t, sizeof(t), (int64_t)left);
		snprintf(eta, sizeof(eta), ", ETA %s", t);
	}
	if (p->bytes_total || p->files_total) {
		/* by bytes, which take the time; by files when all are empty */
		double pct = p->bytes_total ? (double)p->bytes_done * 100 / (double)p->bytes_total
					    : (double)p->files_done * 100 / (double)p->files_total;

		snprintf(elapsed + strlen(elapsed), sizeof(elapsed) - strlen(elapsed), " %.1f%%",
			 pct > 100 ? 100.0 : pct);
	}
	if (p->files_total)
		fprintf(stderr, "\r\033[K[%s] %llu/%llu %s, %s, %s/s%s", elapsed,
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
