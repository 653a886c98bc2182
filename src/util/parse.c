/*
 * Parsing numbers given on the command line or in configuration: by hand,
 * since strtoull() takes leading spaces and a minus sign (wrapping "-1"
 * to the largest value) and strtod() a locale's decimal comma.
 */
#include <string.h>

#include "keel/util.h"

/* Leading decimal digits of s into *v; the end in *end. -KL_EUSAGE: none, or too large. */
static int parse_digits(const char *s, uint64_t *v, const char **end)
{
	uint64_t x = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (x > (UINT64_MAX - d) / 10)
			return -KL_EUSAGE;
		x = x * 10 + d;
	}
	if (p == s)
		return -KL_EUSAGE;
	*v = x;
	*end = p;
	return 0;
}

int kl_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	const char *end;
	uint64_t v;

	if (!s || parse_digits(s, &v, &end) < 0 || *end || v < min || v > max)
		return -KL_EUSAGE;
	*ret = v;
	return 0;
}

int kl_parse_size(const char *s, uint64_t *ret)
{
	static const char units[] = "kmgt";
	const char *end, *u;
	uint64_t v, mult = 1;

	if (!s || parse_digits(s, &v, &end) < 0)
		return -KL_EUSAGE;
	if (*end) {
		char c = (char)(*end | 0x20); /* ASCII lower case */

		u = strchr(units, c);
		if (!u || !*u)
			return -KL_EUSAGE;
		mult = 1ull << (10 * (1 + (u - units)));
		end++;
		if (*end && strcmp(end, "B") && strcmp(end, "iB") && strcmp(end, "b"))
			return -KL_EUSAGE;
	}
	if (v > UINT64_MAX / mult)
		return -KL_EUSAGE;
	*ret = v * mult;
	return 0;
}

/*
 * Decimal digits by hand rather than strtod(): no locale's decimal comma,
 * no exponents, no "inf" or "nan", and no rounding surprises of binary
 * floating point at the boundaries (100% exactly, 0.05%).
 */
int kl_parse_percent(const char *s, unsigned *ret)
{
	uint64_t whole = 0, hundredths = 0, permille;
	bool rest = false; /* nonzero digits beyond the hundredths */
	const char *p = s;

	if (!s || *p < '0' || *p > '9')
		return -KL_EUSAGE;
	for (; *p >= '0' && *p <= '9'; p++) {
		whole = whole * 10 + (uint64_t)(*p - '0');
		if (whole > 100)
			return -KL_EUSAGE; /* before it can overflow */
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -KL_EUSAGE;
		int digits = 0;

		for (; *p >= '0' && *p <= '9'; p++, digits++) {
			if (digits < 2)
				hundredths = hundredths * 10 + (uint64_t)(*p - '0');
			else
				rest |= *p != '0';
		}
		if (digits == 1)
			hundredths *= 10; /* "5.5": 50 hundredths */
	}
	if (*p == '%')
		p++;
	if (*p)
		return -KL_EUSAGE;
	if (whole == 100 && (hundredths || rest))
		return -KL_EUSAGE;
	hundredths += whole * 100;
	permille = (hundredths + 5) / 10;
	/* a share above zero never becomes none at all */
	if (!permille && (hundredths || rest))
		permille = 1;
	*ret = (unsigned)permille;
	return 0;
}
