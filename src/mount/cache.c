/*
 * A small cache of loaded objects by id: decoded trees, and plaintext
 * blobs of the files being read. FUSE calls arrive on several threads,
 * so entries are reference counted (one in use is never evicted) and a
 * miss inserts a loading entry before it loads outside the lock: a second
 * reader of the same blob (the kernel's own read-ahead, or ours) waits
 * for the first fetch instead of fetching it again. The list is searched
 * linearly: it holds at most a few hundred entries, and a lookup costs
 * nothing beside a blob's fetch.
 */
#include "mount-internal.h"

void kl_mcache_init(struct kl_mcache *c, size_t max_cost, size_t max_n,
		    int (*load)(void *ud, const struct kl_id *id, void **value, size_t *cost),
		    void (*drop)(void *value), void *ud)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->loaded, NULL);
	c->head.next = c->head.prev = &c->head;
	c->max_cost = max_cost;
	c->max_n = max_n;
	c->load = load;
	c->drop = drop;
	c->ud = ud;
}

static void unlink_ent(struct kl_mcache *c, struct kl_mcache_ent *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	c->n--;
	c->cost -= e->cost;
}

static void link_front(struct kl_mcache *c, struct kl_mcache_ent *e)
{
	e->next = c->head.next;
	e->prev = &c->head;
	c->head.next->prev = e;
	c->head.next = e;
	c->n++;
	c->cost += e->cost;
}

static void free_ent(struct kl_mcache *c, struct kl_mcache_ent *e)
{
	if (e->value)
		c->drop(e->value);
	kl_free(e);
}

/* Drops unused entries from the old end until the cache fits (under mu). */
static void evict(struct kl_mcache *c)
{
	struct kl_mcache_ent *e = c->head.prev;

	while (e != &c->head && (c->cost > c->max_cost || c->n > c->max_n)) {
		struct kl_mcache_ent *prev = e->prev;

		if (!e->refs && !e->loading) {
			unlink_ent(c, e);
			free_ent(c, e);
		}
		e = prev;
	}
}

void kl_mcache_release(struct kl_mcache *c)
{
	struct kl_mcache_ent *e = c->head.next;

	while (e != &c->head) {
		struct kl_mcache_ent *next = e->next;

		free_ent(c, e);
		e = next;
	}
	c->head.next = c->head.prev = &c->head;
	c->n = c->cost = 0;
	pthread_cond_destroy(&c->loaded);
	pthread_mutex_destroy(&c->mu);
}

static struct kl_mcache_ent *find(struct kl_mcache *c, const struct kl_id *id)
{
	for (struct kl_mcache_ent *e = c->head.next; e != &c->head; e = e->next)
		if (kl_id_eq(&e->id, id))
			return e;
	return NULL;
}

/* Waits for a loading entry (under mu, a reference held). */
static int wait_loaded(struct kl_mcache *c, struct kl_mcache_ent *e)
{
	int rc;

	while (e->loading)
		pthread_cond_wait(&c->loaded, &c->mu);
	rc = e->err;
	if (rc < 0 && !--e->refs) {
		/* the loader left it for us, the last waiter, to free */
		free_ent(c, e);
	}
	return rc;
}

int kl_mcache_get(struct kl_mcache *c, const struct kl_id *id, struct kl_mcache_ent **ret)
{
	struct kl_mcache_ent *e;
	void *value = NULL;
	size_t cost = 0;
	int rc;

	pthread_mutex_lock(&c->mu);
	e = find(c, id);
	if (e) {
		e->refs++;
		/* to the front: the most recently used goes last */
		unlink_ent(c, e);
		link_front(c, e);
		rc = wait_loaded(c, e);
		pthread_mutex_unlock(&c->mu);
		*ret = rc < 0 ? NULL : e;
		return rc;
	}
	e = kl_calloc(1, sizeof(*e));
	if (!e) {
		pthread_mutex_unlock(&c->mu);
		return -ENOMEM;
	}
	e->id = *id;
	e->refs = 1;
	e->loading = true;
	link_front(c, e);
	pthread_mutex_unlock(&c->mu);

	rc = c->load(c->ud, id, &value, &cost);

	pthread_mutex_lock(&c->mu);
	e->loading = false;
	unlink_ent(c, e);
	if (rc < 0) {
		/* out of the list: nobody new finds it; the last of its waiters frees it */
		e->err = rc;
		e->next = e->prev = e;
		if (!--e->refs)
			kl_free(e);
	} else {
		e->value = value;
		e->cost = cost;
		link_front(c, e);
		evict(c);
	}
	pthread_cond_broadcast(&c->loaded);
	pthread_mutex_unlock(&c->mu);
	*ret = rc < 0 ? NULL : e;
	return rc;
}

void kl_mcache_put(struct kl_mcache *c, struct kl_mcache_ent *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&c->mu);
	e->refs--;
	evict(c);
	pthread_mutex_unlock(&c->mu);
}
