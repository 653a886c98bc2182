/*
 * Parsing numbers given on the command line that the library shares
 * (the CLI's other option parsers live in src/cli/common.c).
 */
#include "keel/util.h"

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
