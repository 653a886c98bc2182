#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "backup-internal.h"
#include "keel/fs.h"

int kl_bk_backup_stream(struct backup *b, struct dir_job *root)
{
	const struct kl_backup_opts *o = b->o;
	const char *name = o->stdin_filename ? o->stdin_filename : "stdin";
	struct kl_node n = {0};
	struct kl_file_job *f;
	uint64_t total;
	pid_t pid = -1;
	int fd, rc, read_err;

	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return kl_repo_fail(b->r, -KL_EUSAGE, "invalid --stdin-filename '%s'", name);
	if (o->command) {
		fd = kl_spawn_reader(o->command, &pid);
		if (fd < 0)
			return kl_repo_fail(b->r, fd, "cannot run '%s'", o->command[0]);
	} else {
		fd = o->stdin_fd;
	}
	n.name_len = strlen(name);
	n.name = kl_memdup(name, n.name_len);
	n.type = KL_NODE_FILE;
	n.mode = 0644;
	n.uid = (uint32_t)geteuid();
	n.gid = (uint32_t)getegid();
	n.mtime_sec = n.atime_sec = n.ctime_sec = kl_time_now_ns() / KL_NSEC_PER_SEC;
	rc = n.name ? kl_tree_add(&root->tree, &n) : -ENOMEM;
	f = rc >= 0 ? kl_calloc(1, sizeof(*f)) : NULL;
	if (!f) {
		kl_node_release(&n);
		if (pid > 0) {
			close(fd);
			kill(pid, SIGTERM);
			waitpid(pid, NULL, 0);
		}
		return -ENOMEM;
	}
	atomic_init(&f->pending, 1);
	f->owner = root;
	f->slot = 0;
	root->pending++;
	rc = kl_bk_read_chunks(b, fd, f, &total, &read_err);
	kl_pipeline_file_sealed(&b->pl, f);
	root->tree.nodes[0].size = total;
	b->st.bytes_read = b->st.bytes_total = total;
	b->st.files_new = 1;
	if (pid > 0) {
		int status;

		close(fd);
		if (rc < 0)
			kill(pid, SIGTERM);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (rc >= 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
			if (WIFEXITED(status))
				rc = kl_repo_fail(b->r, -KL_ECMD,
						  "command '%s' exited with status %d",
						  o->command[0], WEXITSTATUS(status));
			else
				rc = kl_repo_fail(b->r, -KL_ECMD,
						  "command '%s' was killed by signal %d",
						  o->command[0], WTERMSIG(status));
		}
	}
	if (rc >= 0 && read_err)
		rc = kl_repo_fail(b->r, read_err, "cannot read the input stream");
	if (rc < 0)
		b->error = rc;
	return rc < 0 ? rc : kl_bk_child_done(b, root);
}

/* ---- the whole backup ---- */
