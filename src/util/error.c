#include <stdio.h>

#include "keel/util.h"

const char *kl_strerror(int r)
{
	switch (-r) {
	case 0:
		return "success";
	case KL_EUSAGE:
		return "invalid usage";
	case KL_EBADPASS:
		return "wrong password or no key found";
	case KL_ECORRUPT:
		return "data is corrupted or was tampered with";
	case KL_ENOREPO:
		return "no repository found";
	case KL_EEXIST_REPO:
		return "a repository already exists there";
	case KL_EVERSION:
		return "repository format is newer than this keel";
	case KL_ENOTFOUND:
		return "not found";
	case KL_EPARTIAL:
		return "some inputs could not be read";
	case KL_ELOCKED:
		return "repository is locked";
	case KL_EREMOTE:
		return "storage service error";
	case KL_ECMD:
		return "command failed";
	case KL_EVERIFY:
		return "verification failed";
	case KL_EINTERRUPTED:
		return "interrupted";
	case KL_ECHECK:
		return "check found errors";
	case KL_EAPPENDONLY:
		return "refused: the repository is append-only for this client";
	case KL_EOBJLOCKED:
		return "object is under retention (object lock)";
	case KL_ELOCKLEFT:
		return "this command's lock was left in the repository";
	case KL_EOUTCLOSED:
		return "output closed by its reader";
	case KL_EDBCONNECT:
		return "cannot connect to the database server";
	case KL_EDBSERVER:
		return "the database server refused the operation";
	case KL_ETARGET:
		return "a recovery point objective was missed";
	case KL_EDBGAP:
		return "the database's log has a gap";
	default:
		if (r < 0 && -r < 1000)
			return strerror(-r);
		return "unknown error";
	}
}

int kl_fail(struct kl_err *e, int r, const char *fmt, ...)
{
	va_list ap;

	if (!e || __atomic_exchange_n(&e->claimed, 1, __ATOMIC_ACQ_REL))
		return r;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	__atomic_store_n(&e->code, r, __ATOMIC_RELEASE);
	return r;
}

void kl_err_clear(struct kl_err *e)
{
	e->code = 0;
	e->msg[0] = 0;
	__atomic_store_n(&e->claimed, 0, __ATOMIC_RELEASE);
}
