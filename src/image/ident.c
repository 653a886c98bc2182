/*
 * What a disk image holds, from its first bytes (docs/IMAGES.md,
 * "Identification"): a GPT or MBR partition table, or a file system
 * directly on the device. A small parser of our own rather than libblkid:
 * keel only records a one-line description, needs no probing of the whole
 * device, and reads the bytes it already holds; the parser is pure (bytes
 * in, text out) and fuzzed (fuzz/fuzz-image-ident.c). Offsets are from the
 * on-disk formats' public descriptions (UEFI spec, ext4/XFS/btrfs/FAT
 * documentation, mkswap's header).
 */
#include <stdio.h>
#include <string.h>

#include "keel/image.h"

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Room for n bytes at off in the n_have bytes we hold. */
static bool has(size_t n_have, size_t off, size_t n)
{
	return off <= n_have && n <= n_have - off;
}

/* A 16-byte UUID as big-endian text (ext, XFS, btrfs, swap store it so). */
static void uuid_be(const uint8_t *u, char out[37])
{
	static const int dash[16] = {[4] = 1, [6] = 1, [8] = 1, [10] = 1};
	size_t k = 0;

	for (int i = 0; i < 16; i++) {
		if (dash[i])
			out[k++] = '-';
		k += (size_t)snprintf(out + k, 3, "%02x", u[i]);
	}
	out[k] = 0;
}

/* A GUID as UEFI stores it: the first three groups little-endian. */
static void guid_le(const uint8_t *g, char out[37])
{
	uint8_t u[16] = {g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6]};

	memcpy(u + 8, g + 8, 8);
	uuid_be(u, out);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * A label of at most n bytes, NUL-padded (FAT: space-padded); anything but
 * printable ASCII, and spaces inside, become '?' so the line stays one word each.
 */
static void label(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	size_t end = 0, k = 0;

	while (end < n && p[end])
		end++;
	while (end && p[end - 1] == ' ')
		end--;
	for (size_t i = 0; i < end && k + 1 < outlen; i++)
		out[k++] = p[i] >= 0x21 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\' ? (char)p[i]
										      : '?';
	out[k] = 0;
}

static int put(char *out, size_t outlen, const char *kind, const char *id_name, const char *id,
	       const char *lab)
{
	if (lab && *lab)
		snprintf(out, outlen, "%s %s=%s label=%s", kind, id_name, id, lab);
	else
		snprintf(out, outlen, "%s %s=%s", kind, id_name, id);
	return 1;
}

/* GPT at sector size ss: the header at LBA 1, entries where it says. */
static int gpt(const uint8_t *p, size_t n, size_t ss, char *out, size_t outlen)
{
	const uint8_t *h = p + ss;
	char guid[37];
	uint64_t ent_lba;
	uint32_t count, esize, used = 0;

	if (!has(n, ss, 92) || memcmp(h, "EFI PART", 8))
		return 0;
	guid_le(h + 56, guid);
	ent_lba = le64(h + 72);
	count = le32(h + 80);
	esize = le32(h + 84);
	if (esize < 128 || esize > 4096 || count > 1024 || ent_lba < 2 || ent_lba > n / ss) {
		snprintf(out, outlen, "gpt disk-guid=%s", guid);
		return 1;
	}
	for (uint32_t i = 0; i < count; i++) {
		size_t off = (size_t)ent_lba * ss + (size_t)i * esize;

		if (!has(n, off, 16))
			break;
		used += !all_zero(p + off, 16);
	}
	snprintf(out, outlen, "gpt disk-guid=%s partitions=%u", guid, used);
	return 1;
}

static int fat(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	char id[10], lab[12];
	size_t o;

	if (!has(n, 0, 512) || le16(p + 510) != 0xaa55)
		return 0;
	if (!memcmp(p + 82, "FAT32   ", 8))
		o = 64; /* FAT32's extended boot record starts 28 bytes later */
	else if (!memcmp(p + 54, "FAT12   ", 8) || !memcmp(p + 54, "FAT16   ", 8))
		o = 36;
	else
		return 0;
	if (p[o + 2] != 0x29)
		return put(out, outlen, "vfat", "id", "none", NULL);
	snprintf(id, sizeof(id), "%04X-%04X", le16(p + o + 5), le16(p + o + 3));
	label(p + o + 7, 11, lab, sizeof(lab));
	if (!strcmp(lab, "NO?NAME"))
		lab[0] = 0;
	return put(out, outlen, "vfat", "id", id, lab);
}

static int mbr(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	char types[4 * 4] = "";
	unsigned used = 0;
	size_t k = 0;

	if (!has(n, 0, 512) || le16(p + 510) != 0xaa55)
		return 0;
	for (int i = 0; i < 4; i++) {
		const uint8_t *e = p + 446 + 16 * i;

		if (e[0] != 0 && e[0] != 0x80)
			return 0; /* not a partition table (a boot sector of something else) */
		if (!e[4])
			continue;
		used++;
		k += (size_t)snprintf(types + k, sizeof(types) - k, "%s%02x", k ? "," : "", e[4]);
	}
	if (!used)
		return 0;
	if (used == 1 && p[446 + 4] == 0xee)
		snprintf(out, outlen, "gpt (protective mbr, no gpt header found)");
	else
		snprintf(out, outlen, "mbr partitions=%u types=%s", used, types);
	return 1;
}

static int ext(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	const uint8_t *s = p + 1024;
	char uuid[37], lab[17];
	const char *kind = "ext2";

	if (!has(n, 1024, 136) || le16(s + 56) != 0xef53)
		return 0;
	if (le32(s + 0x60) & 0x2c0) /* extents, 64bit or flex_bg: ext4 */
		kind = "ext4";
	else if (le32(s + 0x5c) & 0x4) /* has_journal */
		kind = "ext3";
	uuid_be(s + 104, uuid);
	label(s + 120, 16, lab, sizeof(lab));
	return put(out, outlen, kind, "uuid", uuid, lab);
}

static int xfs(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	char uuid[37], lab[13];

	if (!has(n, 0, 120) || memcmp(p, "XFSB", 4))
		return 0;
	uuid_be(p + 32, uuid);
	label(p + 108, 12, lab, sizeof(lab));
	return put(out, outlen, "xfs", "uuid", uuid, lab);
}

static int btrfs(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	const uint8_t *s = p + 65536;
	char uuid[37], lab[65];

	if (!has(n, 65536, 0x12b + 256) || memcmp(s + 64, "_BHRfS_M", 8))
		return 0;
	uuid_be(s + 32, uuid);
	label(s + 0x12b, 256, lab, sizeof(lab));
	return put(out, outlen, "btrfs", "uuid", uuid, lab);
}

/* Linux swap: the signature ends the first page (4 KiB, or 64 KiB on some machines). */
static int swap(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	static const size_t pages[] = {4096, 8192, 16384, 65536};
	char uuid[37], lab[17];

	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		if (!has(n, pages[i] - 10, 10) || memcmp(p + pages[i] - 10, "SWAPSPACE2", 10))
			continue;
		uuid_be(p + 1024 + 12, uuid);
		label(p + 1024 + 28, 16, lab, sizeof(lab));
		return put(out, outlen, "swap", "uuid", uuid, lab);
	}
	return 0;
}

int kl_image_ident(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	if (!outlen)
		return 0;
	out[0] = 0;
	/* GPT first: its protective MBR would read as an MBR with one partition */
	if (gpt(p, n, 512, out, outlen) || gpt(p, n, 4096, out, outlen))
		return 1;
	/* a FAT boot sector has the MBR's signature too */
	if (fat(p, n, out, outlen) || mbr(p, n, out, outlen))
		return 1;
	return ext(p, n, out, outlen) || xfs(p, n, out, outlen) || btrfs(p, n, out, outlen) ||
	       swap(p, n, out, outlen);
}
