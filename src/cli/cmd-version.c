#include <openssl/opensslv.h>
#include <sodium.h>
#include <zstd.h>

#include "cli.h"

static const char usage[] = "usage: keel version\n\nPrint keel's version and its libraries'.\n";

int cmd_version(int argc, char **argv, struct kl_cli *cli)
{
	static const struct option opts[] = {KL_GLOBAL_OPTS, {NULL, 0, NULL, 0}};
	int c, rc;

	while (argv && (c = getopt_long(argc, argv, ":" KL_GLOBAL_SHORT, opts, NULL)) != -1) {
		rc = kl_cli_default_opt(cli, c, usage, argv);
		if (rc)
			return rc;
	}
	if (cli->json) {
		printf("{\"message_type\":\"version\",\"version\":\"%s\",\"zstd\":\"%s\","
		       "\"openssl\":\"%s\",\"libsodium\":\"%s\",\"repository_format\":%d}\n",
		       KEEL_VERSION, ZSTD_versionString(), OPENSSL_VERSION_STR,
		       sodium_version_string(), KL_REPO_VERSION);
		return 0;
	}
	printf("keel %s (repository format %d; zstd %s, OpenSSL %s, libsodium %s)\n", KEEL_VERSION,
	       KL_REPO_VERSION, ZSTD_versionString(), OPENSSL_VERSION_STR, sodium_version_string());
	return 0;
}
