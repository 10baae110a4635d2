/* tsdcheck POSIX driver: executes trace operations on the pthread TSD implementation it is
 * linked against (or one interposed with LD_PRELOAD).  Only <pthread.h> and the C library
 * are used, so it builds with gcc, musl-gcc and diet gcc.
 *
 * Process model: a fork server.  The server reads "N" and forks a child that serves one test
 * case over the same pipes, so every case starts with a fresh key table; when the child ends
 * the server reports "W <status>".  The server never creates keys or threads.
 *
 * Case protocol, one command a line (names are trace indices: k<i>, t<i>, v<i>):
 *   S t                 spawn thread t                   -> R rc
 *   C k -               create k without destructor      -> K rc raw
 *   C k n op...         create k with a program of n instructions:
 *                       g | r v times | s key v | d key | n v
 *   D k                 delete k                         -> R rc
 *   T t k v             set k to v in thread t           -> R rc
 *   G t k               get k in thread t                -> V value
 *   X t                 thread t returns                 -> R rc (after its calls)
 *   F                   create keys until refused        -> F rc count raw...
 *   Q                   end the case
 * Every destructor call is reported as it happens, before the reply of the operation during
 * which it ran:  c key arg effect...   (effects: g=val r=rc s<k>=rc d<k>=rc n<k>=rc:raw)
 * A value is its index (0 = NULL) or ?0x<address> for a pointer the trace never stored.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* The API under test.  By default POSIX keys and threads.  With -DTSD_C11 the C11
 * <threads.h> API: tss_* for the keys and thrd_create/thrd_join for the threads (C11 has no
 * errno codes: a refused tss_create reports EAGAIN, a refused tss_set EINVAL;
 * TSS_DTOR_ITERATIONS replaces PTHREAD_DESTRUCTOR_ITERATIONS).  With -DTSD_PTH, GNU Pth:
 * pth_key_* and user-level pth threads, whose calls answer TRUE/FALSE and set errno, with
 * PTH_KEY_MAX and PTH_DESTRUCTOR_ITERATIONS as the limits.  The locks only sequence the
 * driver: pthread ones, except under Pth, where only Pth's own may block. */
static void *worker_main(void *arg);
#ifdef TSD_PTH
#include <pth.h>
typedef pth_key_t key_type;
typedef pth_t thread_type;
typedef pth_mutex_t mutex_type;
typedef pth_cond_t cond_type;
#define MUTEX_INIT PTH_MUTEX_INIT
#define COND_INIT PTH_COND_INIT
static int key_create(pth_key_t *k, void (*dtor)(void *)) { return pth_key_create(k, dtor) ? 0 : errno; }
static int key_delete(pth_key_t k) { return pth_key_delete(k) ? 0 : errno; }
static void *key_get(pth_key_t k) { return pth_key_getdata(k); }
static int key_set(pth_key_t k, void *v) { return pth_key_setdata(k, v) ? 0 : errno; }
static int thread_start(pth_t *t, void *arg) {
    *t = pth_spawn(PTH_ATTR_DEFAULT, worker_main, arg);
    return *t ? 0 : errno;
}
static int thread_join(pth_t t) { return pth_join(t, NULL) ? 0 : errno; }
static void lock_acquire(pth_mutex_t *m) { pth_mutex_acquire(m, FALSE, NULL); }
static void lock_release(pth_mutex_t *m) { pth_mutex_release(m); }
static void cond_init(pth_cond_t *c) { pth_cond_init(c); }
static void cond_wait(pth_cond_t *c, pth_mutex_t *m) { pth_cond_await(c, m, NULL); }
static void cond_signal(pth_cond_t *c) { pth_cond_notify(c, FALSE); }
static void api_init(void) { pth_init(); }
#else
#include <pthread.h>
typedef pthread_mutex_t mutex_type;
typedef pthread_cond_t cond_type;
#define MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
#define COND_INIT PTHREAD_COND_INITIALIZER
static void lock_acquire(pthread_mutex_t *m) { pthread_mutex_lock(m); }
static void lock_release(pthread_mutex_t *m) { pthread_mutex_unlock(m); }
static void cond_init(pthread_cond_t *c) { pthread_cond_init(c, NULL); }
static void cond_wait(pthread_cond_t *c, pthread_mutex_t *m) { pthread_cond_wait(c, m); }
static void cond_signal(pthread_cond_t *c) { pthread_cond_signal(c); }
static void api_init(void) {}
#ifdef TSD_C11
#include <threads.h>
typedef tss_t key_type;
typedef thrd_t thread_type;
static int key_create(tss_t *k, void (*dtor)(void *)) { return tss_create(k, dtor) == thrd_success ? 0 : EAGAIN; }
static int key_delete(tss_t k) { tss_delete(k); return 0; }
static void *key_get(tss_t k) { return tss_get(k); }
static int key_set(tss_t k, void *v) { return tss_set(k, v) == thrd_success ? 0 : EINVAL; }
static int c11_start(void *arg) { worker_main(arg); return 0; }
static int thread_start(thrd_t *t, void *arg) { return thrd_create(t, c11_start, arg) == thrd_success ? 0 : EAGAIN; }
static int thread_join(thrd_t t) { return thrd_join(t, NULL) == thrd_success ? 0 : EINVAL; }
#else
typedef pthread_key_t key_type;
typedef pthread_t thread_type;
#define key_create pthread_key_create
#define key_delete pthread_key_delete
#define key_get pthread_getspecific
#define key_set pthread_setspecific
static int thread_start(pthread_t *t, void *arg) { return pthread_create(t, NULL, worker_main, arg); }
static int thread_join(pthread_t t) { return pthread_join(t, NULL); }
#endif
#endif

#define MAX_NAMES 65536
#define MAX_DTORS 256
#define MAX_THREADS 64
#define MAX_PROGRAM 8
#define MAX_VALUES 256

struct instr {
    char op;
    int a, b;
};

struct dtor_slot {
    int name;
    int len;
    struct instr prog[MAX_PROGRAM];
};

struct worker {
    thread_type thread;
    int running;
    char cmd;  /* 'T' set, 'G' get, 'X' exit, 0 idle */
    int key, value, done;
    int rc;
    void *got;
    cond_type wake;
    int calls[MAX_DTORS];
};

static key_type keys[MAX_NAMES];
static unsigned char live[MAX_NAMES];
static int next_name;
static struct dtor_slot dtors[MAX_DTORS];
static int ndtors;
static struct worker workers[MAX_THREADS];
static int current = 0; /* the logical thread running now: only one runs at a time */
static char cells[MAX_VALUES];
static mutex_type lock = MUTEX_INIT;
static cond_type done_cond = COND_INIT;
static long keys_max, iterations;

static const char *errname(int rc) {
    static char buf[16];
    switch (rc) {
    case 0: return "0";
    case EAGAIN: return "EAGAIN";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    case EBUSY: return "EBUSY";
    case EDEADLK: return "EDEADLK";
    case EINTR: return "EINTR";
    case ENOSYS: return "ENOSYS";
    }
    snprintf(buf, sizeof buf, "%d", rc);
    return buf;
}

static void *value_ptr(int v) { return v ? &cells[v] : NULL; }

static void put_value(FILE *out, const void *p) {
    const char *c = p;
    if (p == NULL) fputs("0", out);
    else if (c > cells && c < cells + MAX_VALUES) fprintf(out, "%d", (int)(c - cells));
    else fprintf(out, "?%#lx", (unsigned long)(uintptr_t)p);
}

static void on_dtor(void (*self)(void *), void *arg);

/* 256 distinct destructor functions, one per key with a destructor, so a call names its key. */
#define D1(i) static void dtor_##i(void *v) { on_dtor(dtor_##i, v); }
#define D4(i) D1(i##0) D1(i##1) D1(i##2) D1(i##3)
#define D16(i) D4(i##0) D4(i##1) D4(i##2) D4(i##3)
#define D64(i) D16(i##0) D16(i##1) D16(i##2) D16(i##3)
D64(0) D64(1) D64(2) D64(3)
#define P1(i) dtor_##i,
#define P4(i) P1(i##0) P1(i##1) P1(i##2) P1(i##3)
#define P16(i) P4(i##0) P4(i##1) P4(i##2) P4(i##3)
#define P64(i) P16(i##0) P16(i##1) P16(i##2) P16(i##3)
static void (*const trampolines[MAX_DTORS])(void *) = {P64(0) P64(1) P64(2) P64(3)};

static void fail(const char *why) {
    printf("E %s\n", why);
    fflush(stdout);
    _exit(3);
}

/* Create key `name` with destructor slot `slot` (-1: none); returns rc, fills raw. */
static int create(int name, int slot, unsigned long *raw) {
    if (name >= MAX_NAMES) fail("too many keys for the driver");
    int rc = key_create(&keys[name], slot < 0 ? NULL : trampolines[slot]);
    if (rc == 0) {
        live[name] = 1;
        *raw = (unsigned long)keys[name];
    }
    next_name = name + 1;
    return rc;
}

static int new_slot(int name) {
    if (ndtors >= MAX_DTORS) fail("too many keys with destructors for the driver");
    dtors[ndtors].name = name;
    dtors[ndtors].len = 0;
    return ndtors++;
}

static void on_dtor(void (*self)(void *), void *arg) {
    int slot = 0;
    while (trampolines[slot] != self) slot++;
    struct dtor_slot *d = &dtors[slot];
    int k = d->name;
    int n = ++workers[current].calls[slot];
    printf("c %d ", k);
    put_value(stdout, arg);
    for (int i = 0; i < d->len; i++) {
        struct instr *in = &d->prog[i];
        switch (in->op) {
        case 'g':
            fputs(" g=", stdout);
            put_value(stdout, key_get(keys[k]));
            break;
        case 'r':
            if (n <= in->b && live[k]) printf(" r=%s", errname(key_set(keys[k], value_ptr(in->a))));
            break;
        case 's':
            if (n == 1 && in->a < MAX_NAMES && live[in->a])
                printf(" s%d=%s", in->a, errname(key_set(keys[in->a], value_ptr(in->b))));
            break;
        case 'd':
            if (n == 1 && in->a < MAX_NAMES && live[in->a]) {
                live[in->a] = 0;
                printf(" d%d=%s", in->a, errname(key_delete(keys[in->a])));
            }
            break;
        case 'n':
            if (n == 1) {
                int name = next_name, s = new_slot(name);
                unsigned long raw = 0;
                dtors[s].len = 1;
                dtors[s].prog[0].op = 'g';
                int rc = create(name, s, &raw);
                if (rc == 0) rc = key_set(keys[name], value_ptr(in->a));
                if (live[name]) printf(" n%d=%s:%lu", name, errname(rc), raw);
                else printf(" n%d=%s:-1", name, errname(rc));
            }
            break;
        }
    }
    putchar('\n');
    fflush(stdout);
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    lock_acquire(&lock);
    for (;;) {
        while (!w->cmd) cond_wait(&w->wake, &lock);
        char cmd = w->cmd;
        w->cmd = 0;
        if (cmd == 'X') break;
        lock_release(&lock);
        if (cmd == 'T') w->rc = key_set(keys[w->key], value_ptr(w->value));
        else w->got = key_get(keys[w->key]);
        lock_acquire(&lock);
        w->done = 1;
        cond_signal(&done_cond);
    }
    lock_release(&lock);
    return NULL; /* the destructors run now, in this thread */
}

/* Hand one command to worker t and wait for it (the calling thread is t0). */
static void hand(int t, char cmd, int key, int value) {
    struct worker *w = &workers[t];
    lock_acquire(&lock);
    w->key = key;
    w->value = value;
    w->done = 0;
    w->cmd = cmd;
    current = t;
    cond_signal(&w->wake);
    while (!w->done) cond_wait(&done_cond, &lock);
    current = 0;
    lock_release(&lock);
}

static int thread_ok(int t) { return t > 0 && t < MAX_THREADS && workers[t].running; }

static void serve_case(void) {
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        char *p = line;
        char op = *p++;
        int a = 0, b = 0, c = 0;
        unsigned long raw = 0;
        switch (op) {
        case 'S':
            sscanf(p, "%d", &a);
            if (a <= 0 || a >= MAX_THREADS) fail("thread name out of range");
            cond_init(&workers[a].wake);
            memset(workers[a].calls, 0, sizeof workers[a].calls);
            workers[a].running = 1;
            b = thread_start(&workers[a].thread, &workers[a]);
            if (b) workers[a].running = 0;
            printf("R %s\n", errname(b));
            break;
        case 'C': {
            int n, used;
            char dash;
            if (sscanf(p, " %d %c", &a, &dash) == 2 && dash == '-') {
                b = create(a, -1, &raw);
            } else {
                sscanf(p, " %d %d%n", &a, &n, &used);
                p += used;
                int s = new_slot(a);
                for (int i = 0; i < n && i < MAX_PROGRAM; i++) {
                    struct instr *in = &dtors[s].prog[i];
                    in->a = in->b = 0;
                    sscanf(p, " %c%n", &in->op, &used);
                    p += used;
                    if (in->op == 'r' || in->op == 's') sscanf(p, " %d %d%n", &in->a, &in->b, &used);
                    else if (in->op == 'd' || in->op == 'n') sscanf(p, " %d%n", &in->a, &used);
                    else used = 0;
                    p += used;
                    dtors[s].len = i + 1;
                }
                b = create(a, s, &raw);
            }
            if (b) printf("K %s\n", errname(b));
            else printf("K 0 %lu\n", raw);
            break;
        }
        case 'D':
            sscanf(p, "%d", &a);
            if (a >= MAX_NAMES) fail("key name out of range");
            live[a] = 0;
            printf("R %s\n", errname(key_delete(keys[a])));
            break;
        case 'T':
        case 'G':
            sscanf(p, "%d %d %d", &a, &b, &c);
            if (b >= MAX_NAMES || (a != 0 && !thread_ok(a))) fail("bad thread or key");
            if (a == 0) {
                if (op == 'T') printf("R %s\n", errname(key_set(keys[b], value_ptr(c))));
                else {
                    fputs("V ", stdout);
                    put_value(stdout, key_get(keys[b]));
                    putchar('\n');
                }
            } else {
                hand(a, op, b, c);
                if (op == 'T') printf("R %s\n", errname(workers[a].rc));
                else {
                    fputs("V ", stdout);
                    put_value(stdout, workers[a].got);
                    putchar('\n');
                }
            }
            break;
        case 'X':
            sscanf(p, "%d", &a);
            if (!thread_ok(a)) fail("bad thread");
            lock_acquire(&lock);
            workers[a].cmd = 'X';
            current = a;
            cond_signal(&workers[a].wake);
            lock_release(&lock);
            b = thread_join(workers[a].thread);
            current = 0;
            workers[a].running = 0;
            printf("R %s\n", errname(b));
            break;
        case 'F': {
            long cap = (keys_max > 0 ? keys_max : 1024) * 4 + 64, count = 0;
            static unsigned long raws[MAX_NAMES];
            b = 0;
            while (count < cap && next_name < MAX_NAMES) {
                b = create(next_name, -1, &raw);
                if (b) break;
                raws[count++] = raw;
            }
            printf("F %s %ld", errname(b), count);
            for (long i = 0; i < count; i++) printf(" %lu", raws[i]);
            putchar('\n');
            break;
        }
        case 'Q':
            fflush(stdout);
            _exit(0);
        default:
            fail("unknown command");
        }
        fflush(stdout);
    }
    _exit(0);
}

int main(void) {
    /* dietlibc has neither sysconf name: fall back on the <limits.h> constants. */
    keys_max = iterations = -1;
#ifdef _SC_THREAD_KEYS_MAX
    keys_max = sysconf(_SC_THREAD_KEYS_MAX);
#endif
#ifdef _SC_THREAD_DESTRUCTOR_ITERATIONS
    iterations = sysconf(_SC_THREAD_DESTRUCTOR_ITERATIONS);
#endif
#ifdef PTHREAD_KEYS_MAX
    if (keys_max < 0) keys_max = PTHREAD_KEYS_MAX;
#endif
#if defined(TSD_PTH)
    keys_max = PTH_KEY_MAX;
    iterations = PTH_DESTRUCTOR_ITERATIONS;
#elif defined(TSD_C11)
    iterations = TSS_DTOR_ITERATIONS;
#elif defined(PTHREAD_DESTRUCTOR_ITERATIONS)
    if (iterations < 0) iterations = PTHREAD_DESTRUCTOR_ITERATIONS;
#endif
    printf("H %ld %ld\n", keys_max, iterations);
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] != 'N') continue;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            api_init();
            printf("P %ld\n", (long)getpid());
            fflush(stdout);
            serve_case();
        }
        int status = 0;
        if (pid < 0) status = -1;
        else while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        if (pid > 0 && WIFSIGNALED(status)) printf("W s %d\n", WTERMSIG(status));
        else printf("W x %d\n", pid > 0 ? WEXITSTATUS(status) : -1);
        fflush(stdout);
    }
    return 0;
}
