/* An alternative thread-specific-data implementation and its mutant zoo, loaded with LD_PRELOAD
 * (or linked) in front of glibc.
 *
 * It has its own key table, per-thread blocks of cells (attached on a thread's first use,
 * recycled through a pool when the thread exits, as thread descriptors are), and its own
 * destructor loop: glibc calls one hook (a real glibc key, whose value is the thread's block)
 * at thread exit, and the hook runs this library's passes.  Built without switches it conforms.
 * tsdcheck/checker/zoo.py is the catalogue (bug class, citation, property expected to catch it).
 *
 * Conformant but different (must never be flagged):
 *   ORDER_DESC        scan the table from the top (another allowed order)
 *   GO_ON             keep making passes while values remain, no cap (POSIX allows it; the
 *                     "at most N" readings do not, so under them this is the bug "no cap")
 *   RESTART           after each call, restart the scan at the lowest key not yet called in the pass
 *   NEXT_PASS         a pass calls only the keys due at its start; later values wait for the next
 *   CHECK_LIVE        get/set validate the key: EINVAL (set) and NULL (get) for non-live keys
 *   KEY_GEN           key values carry a generation, so a value is never handed out twice
 * Bugs (one each):
 *   BUG_NO_CLEAR      call the destructor before clearing the value
 *   BUG_EXTRA_PASS    one pass more than PTHREAD_DESTRUCTOR_ITERATIONS
 *   BUG_SHORT_PASS    one pass fewer than PTHREAD_DESTRUCTOR_ITERATIONS
 *   BUG_NO_RESCAN     after the first pass the block is wiped: values set by destructors are lost
 *   BUG_CAP_PER_KEY   the cap counts calls per key, not passes
 *   BUG_EAGAIN_EARLY  refuse the last key
 *   BUG_EAGAIN_NEVER  the table is larger than the advertised PTHREAD_KEYS_MAX and fills up
 *   BUG_STALE         delete does not invalidate per-thread values: a reused slot shows them,
 *                     and hands them to the new key's destructor
 *   BUG_DUP_KEY       a slot is free when its destructor is NULL: keys without one are handed out again
 *   BUG_KEY0_INVALID  key value 0 is handed out but treated as "no key" by get/set/delete
 *   BUG_DELETE_CALLS  pthread_key_delete calls the destructor of the calling thread's value
 *   BUG_SET_CALLS     pthread_setspecific calls the destructor of the value it replaces
 *   BUG_DTOR_AFTER_DELETE  a cell remembers its destructor at set time: deleted keys still get calls
 *   BUG_DTOR_NULL     destructors are called for NULL values too
 *   BUG_STALE_ARG     a pass snapshots and clears every value first, then calls with the snapshot
 *   BUG_NEW_IN_DTOR   the scan bound is fixed when the loop starts: keys created by destructors are skipped
 *   BUG_SHARED        one block for the whole process: values are shared between threads
 *   BUG_LEFTOVERS     a recycled block is not cleared: a new thread sees an exited thread's values
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define KEYS PTHREAD_KEYS_MAX
#ifdef BUG_EAGAIN_NEVER
#define SLOTS (2 * KEYS)
#else
#define SLOTS KEYS
#endif
#ifdef BUG_EAGAIN_EARLY
#define USABLE (SLOTS - 1)
#else
#define USABLE SLOTS
#endif
#if defined(BUG_EXTRA_PASS)
#define PASSES (PTHREAD_DESTRUCTOR_ITERATIONS + 1)
#elif defined(BUG_SHORT_PASS)
#define PASSES (PTHREAD_DESTRUCTOR_ITERATIONS - 1)
#else
#define PASSES PTHREAD_DESTRUCTOR_ITERATIONS
#endif

typedef void (*dtor_fn)(void *);

struct slot {
    unsigned seq; /* odd: in use; bumped by create and by delete */
    dtor_fn dtor;
};
struct cell {
    unsigned seq; /* the slot's seq when the value was set: a value of a deleted key is ignored */
    void *value;
#ifdef BUG_DTOR_AFTER_DELETE
    dtor_fn dtor;
#endif
};
struct block {
    struct block *next; /* in the pool */
    struct cell cell[SLOTS];
};

static struct slot slots[SLOTS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct block *pool;
#ifdef BUG_SHARED
static struct block *mine;
#else
static __thread struct block *mine;
#endif
static __thread int hooked;
static __thread int calling; /* inside a destructor call made by this library */
static pthread_key_t exit_hook;
static pthread_once_t hook_once = PTHREAD_ONCE_INIT;

static void run_destructors(void *arg);

static void make_hook(void) {
    int (*real_create)(pthread_key_t *, dtor_fn) = dlsym(RTLD_NEXT, "pthread_key_create");
    real_create(&exit_hook, run_destructors);
}

/* The calling thread's block, attached on first use: from the pool, or new. */
static struct block *attach(void) {
    if (!mine) {
        pthread_mutex_lock(&table_lock);
        struct block *b = pool;
        if (b) pool = b->next;
        pthread_mutex_unlock(&table_lock);
        if (b) {
#ifndef BUG_LEFTOVERS
            memset(b->cell, 0, sizeof b->cell);
#endif
        } else {
            b = calloc(1, sizeof *b);
            if (!b) return NULL;
        }
        mine = b;
    }
    if (!hooked) {
        int (*real_set)(pthread_key_t, const void *) = dlsym(RTLD_NEXT, "pthread_setspecific");
        pthread_once(&hook_once, make_hook);
        real_set(exit_hook, mine);
        hooked = 1;
    }
    return mine;
}

static int in_use(unsigned s) {
#ifdef BUG_DUP_KEY
    return slots[s].dtor != NULL;
#else
    return slots[s].seq & 1;
#endif
}

static pthread_key_t key_of(unsigned s) {
#ifdef KEY_GEN
    return s + SLOTS * (slots[s].seq >> 1);
#else
    return s;
#endif
}

/* The slot a key value names if that key is live, else SLOTS. */
static unsigned live_slot(pthread_key_t k) {
#ifdef BUG_KEY0_INVALID
    if (k == 0) return SLOTS;
#endif
    unsigned s = k % SLOTS;
    return in_use(s) && key_of(s) == k ? s : SLOTS;
}

/* The value a cell holds for slot s's current key. */
static void *current(const struct cell *c, unsigned s) {
#ifdef BUG_STALE
    (void)s;
    return c->value;
#else
    return c->seq == slots[s].seq ? c->value : NULL;
#endif
}

static dtor_fn dtor_of(const struct cell *c, unsigned s) {
#ifdef BUG_DTOR_AFTER_DELETE
    (void)s;
    return c->value ? c->dtor : NULL;
#else
    return current(c, s) ? slots[s].dtor : NULL;
#endif
}

/* Whether slot s's destructor is due in block b (the value is current, non-NULL, with a destructor). */
static int due(struct block *b, unsigned s) { return dtor_of(&b->cell[s], s) != NULL; }

/* Whether this loop visits slot s in a scan (the buggy ones visit more). */
static int visit(struct block *b, unsigned s) {
#ifdef BUG_DTOR_NULL
    (void)b;
    return in_use(s) && slots[s].dtor != NULL;
#else
    return due(b, s);
#endif
}

/* Clear the value, then call its destructor. */
__attribute__((unused)) static void call(struct block *b, unsigned s) {
    struct cell *c = &b->cell[s];
    dtor_fn dtor = dtor_of(c, s);
#ifdef BUG_DTOR_AFTER_DELETE
    void *v = c->value;
#else
    void *v = current(c, s);
#endif
#ifdef BUG_DTOR_NULL
    if (!dtor) dtor = slots[s].dtor;
#endif
    calling++;
#ifdef BUG_NO_CLEAR
    dtor(v);
    if (c->value == v) c->value = NULL;
#else
    c->value = NULL;
    dtor(v);
#endif
    calling--;
}

static unsigned slot_at(unsigned n, unsigned top) {
#ifdef ORDER_DESC
    return top - 1 - n;
#else
    (void)top;
    return n;
#endif
}

/* One pass over the slots below top; count[s] is how often slot s's destructor was called. */
static void pass_over(struct block *b, unsigned top, unsigned char *count) {
#if defined(RESTART)
    unsigned char called[SLOTS] = {0};
    for (;;) {
        unsigned n = 0;
        while (n < top && (called[slot_at(n, top)] || !visit(b, slot_at(n, top)))) n++;
        if (n == top) break;
        called[slot_at(n, top)] = 1;
        call(b, slot_at(n, top));
    }
#elif defined(NEXT_PASS)
    unsigned char at_start[SLOTS];
    for (unsigned s = 0; s < top; s++) at_start[s] = visit(b, s);
    for (unsigned n = 0; n < top; n++) {
        unsigned s = slot_at(n, top);
        if (at_start[s] && visit(b, s)) call(b, s);
    }
#elif defined(BUG_STALE_ARG)
    void *snapshot[SLOTS];
    dtor_fn dtors[SLOTS];
    for (unsigned s = 0; s < top; s++) {
        dtors[s] = visit(b, s) ? dtor_of(&b->cell[s], s) : NULL;
        snapshot[s] = b->cell[s].value;
        if (dtors[s]) b->cell[s].value = NULL;
    }
    for (unsigned n = 0; n < top; n++) {
        unsigned s = slot_at(n, top);
        if (dtors[s]) dtors[s](snapshot[s]);
    }
#else
    for (unsigned n = 0; n < top; n++) {
        unsigned s = slot_at(n, top);
#ifdef BUG_CAP_PER_KEY
        if (count[s] >= PASSES) continue;
#endif
        if (visit(b, s)) call(b, s), count[s]++;
    }
#endif
    (void)count;
}

/* Whether another pass is needed: a due value remains (for a key not yet at its cap). */
static int any_due(struct block *b, unsigned top, const unsigned char *count) {
    for (unsigned s = 0; s < top; s++) {
#ifdef BUG_CAP_PER_KEY
        if (count[s] >= PASSES) continue;
#endif
        if (due(b, s)) return 1;
    }
    (void)count;
    return 0;
}

/* glibc's destructor for the hook key: this library's destructor loop, then the block is recycled. */
static void run_destructors(void *arg) {
    struct block *b = arg;
    unsigned char count[SLOTS] = {0};
    unsigned top = SLOTS;
#ifdef BUG_NEW_IN_DTOR
    pthread_mutex_lock(&table_lock);
    while (top > 0 && !in_use(top - 1)) top--;
    pthread_mutex_unlock(&table_lock);
#endif
    for (int pass = 1;; pass++) {
        pass_over(b, top, count);
#ifdef BUG_NO_RESCAN
        memset(b->cell, 0, sizeof b->cell);
#endif
        if (!any_due(b, top, count)) break;
#if !defined(GO_ON) && !defined(BUG_CAP_PER_KEY)
        if (pass >= PASSES) break;
#endif
    }
    hooked = 0;
#ifndef BUG_SHARED
    mine = NULL;
    pthread_mutex_lock(&table_lock);
    b->next = pool;
    pool = b;
    pthread_mutex_unlock(&table_lock);
#endif
}

int pthread_key_create(pthread_key_t *key, dtor_fn dtor) {
    pthread_once(&hook_once, make_hook);
    pthread_mutex_lock(&table_lock);
    int used = 0;
    for (unsigned s = 0; s < SLOTS; s++) used += in_use(s);
    for (unsigned s = 0; s < SLOTS && used < USABLE; s++) {
        if (in_use(s)) continue;
        slots[s].seq++;
        slots[s].dtor = dtor;
        *key = key_of(s);
        pthread_mutex_unlock(&table_lock);
        return 0;
    }
    pthread_mutex_unlock(&table_lock);
    return EAGAIN;
}

int pthread_key_delete(pthread_key_t k) {
#ifdef BUG_DELETE_CALLS
    unsigned d = live_slot(k);
    if (d < SLOTS && mine && due(mine, d) && !calling) call(mine, d); /* not re-entered */
#endif
    pthread_mutex_lock(&table_lock);
    int rc = EINVAL;
    unsigned s = live_slot(k);
    if (s < SLOTS) {
        slots[s].seq++;
        slots[s].dtor = NULL;
        rc = 0;
    }
    pthread_mutex_unlock(&table_lock);
    return rc;
}

void *pthread_getspecific(pthread_key_t k) {
#ifdef CHECK_LIVE
    unsigned s = live_slot(k);
#elif defined(BUG_KEY0_INVALID)
    unsigned s = k == 0 ? SLOTS : k % SLOTS;
#else
    unsigned s = k % SLOTS;
#endif
    struct block *b = attach();
    return s < SLOTS && b ? current(&b->cell[s], s) : NULL;
}

int pthread_setspecific(pthread_key_t k, const void *value) {
#ifdef CHECK_LIVE
    unsigned s = live_slot(k);
    if (s == SLOTS) return EINVAL;
#elif defined(BUG_KEY0_INVALID)
    if (k == 0) return EINVAL;
    unsigned s = k % SLOTS;
#else
    unsigned s = k % SLOTS; /* no validation: a non-live key is undefined behaviour */
#endif
    struct block *b = attach();
    if (!b) return ENOMEM;
    struct cell *c = &b->cell[s];
#ifdef BUG_SET_CALLS
    void *old = current(c, s);
    dtor_fn old_dtor = dtor_of(c, s);
#endif
    c->seq = slots[s].seq;
    c->value = (void *)value;
#ifdef BUG_DTOR_AFTER_DELETE
    c->dtor = slots[s].dtor;
#endif
#ifdef BUG_SET_CALLS
    if (old_dtor && old != value && !calling) { /* not re-entered */
        calling++;
        old_dtor(old);
        calling--;
    }
#endif
    return 0;
}
