/* An alternative thread-specific-data implementation, loaded with LD_PRELOAD in the tests.
 *
 * It has its own key table and per-thread cells, and runs its own destructor loop: glibc
 * calls one hook (a real glibc key) at thread exit, and the hook runs this library's passes.
 * Compile-time switches pick a conformant variant or inject one bug:
 *   ORDER_DESC        scan the table from the top (another allowed order)
 *   GO_ON             keep making passes while values remain (allowed by POSIX, not by "at most N")
 *   BUG_NO_CLEAR      call the destructor before clearing the value
 *   BUG_EXTRA_PASS    one pass more than PTHREAD_DESTRUCTOR_ITERATIONS
 *   BUG_EAGAIN_EARLY  refuse the last key
 *   BUG_STALE         a reused slot shows the deleted key's value
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>

#define KEYS PTHREAD_KEYS_MAX
#ifdef BUG_EAGAIN_EARLY
#define USABLE (KEYS - 1)
#else
#define USABLE KEYS
#endif
#ifdef BUG_EXTRA_PASS
#define PASSES (PTHREAD_DESTRUCTOR_ITERATIONS + 1)
#else
#define PASSES PTHREAD_DESTRUCTOR_ITERATIONS
#endif
#define GO_ON_LIMIT 10000

struct slot {
    unsigned seq; /* odd: in use */
    void (*dtor)(void *);
};
struct cell {
    unsigned seq;
    void *value;
};

static struct slot slots[KEYS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread struct cell cells[KEYS];
static __thread int hooked;
static pthread_key_t exit_hook;
static pthread_once_t hook_once = PTHREAD_ONCE_INIT;

static int live(pthread_key_t k) { return k < KEYS && (slots[k].seq & 1); }

static int due(pthread_key_t k) {
    return cells[k].value != NULL && cells[k].seq == slots[k].seq && slots[k].dtor != NULL;
}

static void run_destructors(void *unused) {
    (void)unused;
    for (int pass = 1;; pass++) {
        for (int n = 0; n < KEYS; n++) {
#ifdef ORDER_DESC
            pthread_key_t k = KEYS - 1 - n;
#else
            pthread_key_t k = n;
#endif
            if (!due(k)) continue;
            void *v = cells[k].value;
#ifdef BUG_NO_CLEAR
            slots[k].dtor(v);
            if (cells[k].value == v) cells[k].value = NULL;
#else
            cells[k].value = NULL;
            slots[k].dtor(v);
#endif
        }
        int left = 0;
        for (pthread_key_t k = 0; k < KEYS && !left; k++) left = due(k);
        if (!left) return;
#ifdef GO_ON
        if (pass >= GO_ON_LIMIT) return;
#else
        if (pass >= PASSES) return;
#endif
    }
}

static void make_hook(void) {
    int (*real_create)(pthread_key_t *, void (*)(void *)) = dlsym(RTLD_NEXT, "pthread_key_create");
    real_create(&exit_hook, run_destructors);
}

int pthread_key_create(pthread_key_t *key, void (*dtor)(void *)) {
    pthread_once(&hook_once, make_hook);
    pthread_mutex_lock(&table_lock);
    int used = 0;
    for (int k = 0; k < KEYS; k++) used += slots[k].seq & 1;
    for (pthread_key_t k = 0; k < KEYS && used < USABLE; k++) {
        if (slots[k].seq & 1) continue;
        slots[k].seq++;
        slots[k].dtor = dtor;
        *key = k;
        pthread_mutex_unlock(&table_lock);
        return 0;
    }
    pthread_mutex_unlock(&table_lock);
    return EAGAIN;
}

int pthread_key_delete(pthread_key_t k) {
    pthread_mutex_lock(&table_lock);
    int rc = EINVAL;
    if (live(k)) {
        slots[k].seq++;
        slots[k].dtor = NULL;
        rc = 0;
    }
    pthread_mutex_unlock(&table_lock);
    return rc;
}

void *pthread_getspecific(pthread_key_t k) {
    if (k >= KEYS) return NULL;
#ifdef BUG_STALE
    return cells[k].value;
#else
    return cells[k].seq == slots[k].seq ? cells[k].value : NULL;
#endif
}

int pthread_setspecific(pthread_key_t k, const void *value) {
    if (!live(k)) return EINVAL;
    if (!hooked) {
        int (*real_set)(pthread_key_t, const void *) = dlsym(RTLD_NEXT, "pthread_setspecific");
        pthread_once(&hook_once, make_hook);
        real_set(exit_hook, (void *)1);
        hooked = 1;
    }
    cells[k].seq = slots[k].seq;
    cells[k].value = (void *)value;
    return 0;
}
