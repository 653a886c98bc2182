/*
 * Fuzzes kl_image_ident, which reads the first bytes of a disk image
 * (partition tables, file system superblocks: docs/IMAGES.md,
 * "Identification"). Oracle: never reads outside the input (ASan), always
 * writes a NUL-terminated line of printable ASCII that fits, "" exactly
 * when nothing was recognised, and the same answer for the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "keel/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char a[KL_IMAGE_IDENT_LEN], b[KL_IMAGE_IDENT_LEN], small[24];
	int ra = kl_image_ident(data, size, a, sizeof(a));
	size_t n = strlen(a);

	if ((ra == 1) != (n > 0) || n >= sizeof(a))
		abort();
	for (size_t i = 0; i < n; i++)
		if (a[i] < 0x20 || a[i] > 0x7e)
			abort(); /* the line goes to terminals and JSON as it is */
	if (kl_image_ident(data, size, b, sizeof(b)) != ra || strcmp(a, b))
		abort();
	/* a short buffer truncates, never overflows */
	if (kl_image_ident(data, size, small, sizeof(small)) != ra ||
	    strncmp(small, a, sizeof(small) - 1))
		abort();
	return 0;
}
