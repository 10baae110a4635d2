/* ---- The judge (the parent process) -------------------------------------------------------
 * Runs the trace in a fresh child process (per run), reads its observations, and follows the
 * table of allowed observations above: a step whose text has no edge is a violation.  A step
 * that does not finish within the timeout is a hang; a child killed by a signal crashed. */

enum { CONFORMS, VIOLATION, UNDEFINED };

struct seen {
    char result[256], events[16384], ended[32], violation[600];
    int has_result, done;
    char op_result[MAX_LANE_OPS][64], op_events[MAX_LANE_OPS][4096];
    int op_inv[MAX_LANE_OPS], op_ret[MAX_LANE_OPS];
};
static struct seen seen;
static char report[1 << 16];
static char last_props[256];

/* What a run showed, kept to be printed if it is the one reported. */
static void note(const char *fmt, ...) {
    size_t n = strlen(report);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report + n, sizeof report - n, fmt, ap);
    va_end(ap);
}
static char observed[20000];
static char op_texts[MAX_LANE_OPS][4200];

static void reset_seen(void) {
    memset(&seen, 0, sizeof seen);
    for (int i = 0; i < MAX_LANE_OPS; i++) seen.op_inv[i] = seen.op_ret[i] = -1;
}

static void add_event(char *to, size_t cap, const char *event) {
    size_t n = strlen(to);
    snprintf(to + n, cap - n, "%s%s", n ? " ; " : "", event);
}

/* One line from the child: "o|e|d|! STEP[.OP] REST". */
static void take(char *line) {
    char kind = line[0];
    char *p = line + 1, *rest;
    long step = strtol(p, &rest, 10), op = -1;
    (void)step;
    if (*rest == '.') op = strtol(rest + 1, &rest, 10);
    while (*rest == ' ') rest++;
    if (kind == 'd') seen.done = 1;
    else if (kind == '!') snprintf(seen.violation, sizeof seen.violation, "%s", rest);
    else if (kind == 'e' && op >= 0 && op < MAX_LANE_OPS) add_event(seen.op_events[op], sizeof seen.op_events[op], rest);
    else if (kind == 'e') add_event(seen.events, sizeof seen.events, rest);
    else if (kind == 'o' && op >= 0 && op < MAX_LANE_OPS) {
        char inv[16] = "-", ret[16] = "-";
        int used = 0;
        sscanf(rest, "%15s %15s %n", inv, ret, &used);
        seen.op_inv[op] = inv[0] == '-' ? -1 : atoi(inv);
        seen.op_ret[op] = ret[0] == '-' ? -1 : atoi(ret);
        snprintf(seen.op_result[op], sizeof seen.op_result[op], "%s", rest + used);
    } else if (kind == 'o') {
        snprintf(seen.result, sizeof seen.result, "%s", rest);
        seen.has_result = 1;
    }
}

static void canon(char *out, size_t cap, const char *result, const char *ended, const char *events) {
    int n = snprintf(out, cap, "%s", result);
    if (ended[0]) n += snprintf(out + n, cap - (size_t)n, "%sended=%s", result[0] ? " " : "", ended);
    snprintf(out + n, cap - (size_t)n, "|%s", events);
}

/* Keys made by destructors in a block renamed n0, n1, ... by first appearance (as the plan does). */
static void rename_dynamic(char *s, size_t cap, int base) {
    char out[4200];
    int names[64], count = 0;
    size_t o = 0;
    for (const char *p = s; *p && o < sizeof out - 16;) {
        if (*p == 'k' && isdigit((unsigned char)p[1])) {
            char *end;
            long k = strtol(p + 1, &end, 10);
            if (k >= base) {
                int i = 0;
                while (i < count && names[i] != k) i++;
                if (i == count && count < 64) names[count++] = (int)k;
                o += (size_t)snprintf(out + o, sizeof out - o, "n%d", i);
                p = end;
                continue;
            }
        }
        out[o++] = *p++;
    }
    out[o] = 0;
    snprintf(s, cap, "%s", out);
}

static const struct property *property(const char *id) {
    for (size_t i = 0; i < sizeof properties / sizeof properties[0]; i++)
        if (strcmp(properties[i].id, id) == 0) return &properties[i];
    return NULL;
}

static void cite(const char *ids) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", ids);
    for (char *id = strtok(buf, ","); id; id = strtok(NULL, ",")) {
        const struct property *p = property(id);
        if (p) note("  violated property %s: %s\n    (%s: \"%s\")\n", p->id, p->summary, p->source, p->quote);
        else note("  violated property %s\n", id);
    }
}

static int count_calls(const char *text) {
    const char *bar = strchr(text, '|');
    int n = 0;
    for (const char *p = bar ? bar + 1 : text; *p; p++)
        if ((p == bar + 1 || (p[-1] == ' ' && p[-2] == ';')) && *p == 'k') n++;
    return n;
}

/* The property a rejected step most likely breaks: the recorded trace's, if this is its
 * rejection; else what the observation shows; else the plan's hint for the step. */
static const char *diagnose(const struct node *n, const char *text) {
    int step = n->step;
    const char *bar = strchr(text, '|');
    const char *events = bar ? bar + 1 : "";
    if (step == RECORDED_STEP && strcmp(text, recorded_text) == 0) return recorded_props;
    if (strstr(text, "ended=signal")) return "calls-return";
    if (strstr(events, "cancel=enabled")) return "dtor-cancel-disabled";
    if (strstr(events, ":acted")) return "no-cancel-in-exit";
    if (step_kind[step] == 'x') {
        int fewest = 1 << 30, most = -1, ended_allowed = 0;
        for (int i = 0; i < n->nedges; i++) {
            int c = count_calls(edges[n->edge + i].text);
            fewest = c < fewest ? c : fewest;
            most = c > most ? c : most;
            ended_allowed |= strstr(edges[n->edge + i].text, "ended=") != NULL;
        }
        if (strstr(text, "ended=") && !ended_allowed) return "main-exit-goes-on";
        const char *h = strstr(events, " h"), *k = strchr(events, 'k');
        if (h && k && k < h) return "cleanup-before-dtors";
        if (strstr(events, "get=v")) return "dtor-sees-null";
        if (strstr(events, "(NULL)")) return "no-dtor-for-null";
        if (count_calls(text) < fewest) return "at-least-n-passes";
        if (count_calls(text) > most) return "at-most-n-passes";
        if (strncmp(text, "canceled", 8) == 0 || strncmp(text, "returned", 8) == 0) {
            int head_ok = 0;
            for (int i = 0; i < n->nedges; i++) head_ok |= strncmp(edges[n->edge + i].text, text, 8) == 0;
            if (!head_ok) return "join-status";
        }
        return n->hint;
    }
    if (step_kind[step] == 'e' && events[0]) return "no-dtors-at-process-exit";
    if (events[0] && step_kind[step] != 'b') return "dtor-only-at-exit";
    return n->hint;
}

static void show_allowed(const struct node *n) {
    for (int i = 0; i < n->nedges && i < 4; i++) note("    allowed:  %s\n", edges[n->edge + i].text);
    if (n->nedges > 4) note("    (and %d more allowed observations)\n", n->nedges - 4);
}

/* Whether an order agrees with real time.  An exit placed step by step appears once per step;
 * an operation b that returned before a was invoked must have all its steps before a's. */
static int order_ok(const short *order, int len) {
    int last[MAX_LANE_OPS];
    for (int b = 0; b < BLOCK_OPS; b++) last[b] = -1;
    for (int j = 0; j < len; j++) last[order[j]] = j;
    for (int j = 0; j < len; j++) {
        int a = order[j];
        for (int b = 0; b < BLOCK_OPS; b++)
            if (b != a && seen.op_ret[b] >= 0 && seen.op_inv[a] >= 0 && seen.op_ret[b] < seen.op_inv[a] &&
                !(last[b] >= 0 && last[b] < j))
                return 0; /* b returned before a was invoked, yet does not come wholly before it */
    }
    return 1;
}

/* A block: some allowed vector of texts with an order that agrees with real time. */
static int judge_block(const struct node *n, int *target, const char **why) {
    for (int i = 0; i < BLOCK_OPS; i++) {
        if (strcmp(seen.op_result[i], "skipped") == 0 || strcmp(seen.op_result[i], "pending") == 0)
            snprintf(op_texts[i], sizeof op_texts[i], "%s|", seen.op_result[i]);
        else snprintf(op_texts[i], sizeof op_texts[i], "%s|%s", seen.op_result[i], seen.op_events[i]);
        rename_dynamic(op_texts[i], sizeof op_texts[i], BLOCK_BASE);
    }
    for (int r = n->row; r < n->row + n->nrows; r++) {
        int same = 1;
        for (int i = 0; i < BLOCK_OPS && same; i++) same = strcmp(row_texts[rows[r].text + i], op_texts[i]) == 0;
        if (same && rows[r].norders == 0) { /* a block too large for its orders: any interleaving will do */
            *target = rows[r].target;
            return CONFORMS;
        }
        for (int o = 0; same && o < rows[r].norders; o++) {
            const short *order = &orders[(rows[r].order + o) * ORDER_LEN];
            int len = 0;
            while (len < ORDER_LEN && order[len] >= 0) len++;
            if (order_ok(order, len)) {
                *target = rows[r].target;
                return CONFORMS;
            }
        }
    }
    for (int u = n->undef; u < n->undef + n->nundefs; u++) {
        const short *order = &orders[undefs[u].order * ORDER_LEN];
        int same = 1;
        for (int j = 0; j + 1 < undefs[u].len && same; j++) {
            const char *want = row_texts[undefs[u].text + j]; /* "*": an exit still under way */
            same = strcmp(want, "*") == 0 || strcmp(want, op_texts[order[j]]) == 0;
        }
        if (same && order_ok(order, undefs[u].len)) {
            *why = undefs[u].reason;
            return UNDEFINED;
        }
    }
    return VIOLATION;
}

static void report_block(void) {
    for (int i = 0; i < BLOCK_OPS; i++) {
        char inv[16] = "-", ret[16] = "-";
        if (seen.op_inv[i] >= 0) snprintf(inv, sizeof inv, "%d", seen.op_inv[i]);
        if (seen.op_ret[i] >= 0) snprintf(ret, sizeof ret, "%d", seen.op_ret[i]);
        note("    %-34s @%s..%s  %s\n", block_op_text[i], inv, ret, op_texts[i]);
    }
}

static char rbuf[1 << 16];
static size_t rlen;

/* The next line from the child: 1, 0 at end of file, -1 after `ms` milliseconds without one. */
static int read_line(int fd, char *line, size_t cap, int ms) {
    for (;;) {
        char *nl = memchr(rbuf, '\n', rlen);
        if (nl) {
            size_t n = (size_t)(nl - rbuf);
            size_t keep = n < cap - 1 ? n : cap - 1;
            memcpy(line, rbuf, keep);
            line[keep] = 0;
            memmove(rbuf, nl + 1, rlen - n - 1);
            rlen -= n + 1;
            return 1;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, ms);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return -1;
        ssize_t got = read(fd, rbuf + rlen, sizeof rbuf - rlen - 1);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 0;
        rlen += (size_t)got;
        if (rlen == sizeof rbuf - 1) rlen = 0; /* a runaway line: drop it */
    }
}

static void status_text(int status, char *out, size_t cap) {
    if (WIFSIGNALED(status)) snprintf(out, cap, "signal %d", WTERMSIG(status));
    else snprintf(out, cap, "%d", WEXITSTATUS(status));
}

/* Run the trace once in a fresh process; what a violation showed goes to `report`. */
static int run_once(unsigned seed, int timeout_ms) {
    int fds[2], status = 0, reaped = 0, node = 0, verdict = CONFORMS;
    char line[8192], why[700] = "";
    const char *props = NULL;
    if (pipe(fds)) {
        perror("tsdcheck repro: pipe");
        exit(2);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("tsdcheck repro: fork");
        exit(2);
    }
    if (pid == 0) {
        close(fds[0]);
        setpgid(0, 0);
        out_fd = fds[1];
        run_seed = seed;
        me = 0;
        note_task(0);
        main_script();
        exit(0); /* main returns */
    }
    setpgid(pid, pid);
    close(fds[1]);
    rlen = 0;
    report[0] = 0;
    reset_seen();
    for (;;) {
        const struct node *n = &nodes[node];
        if (n->kind >= 2) {
            verdict = n->kind == 3 ? UNDEFINED : CONFORMS;
            if (verdict == UNDEFINED) note("  %s: not judged further (not a bug)\n", n->stop);
            break;
        }
        int r = reaped ? 0 : read_line(fds[0], line, sizeof line, timeout_ms);
        if (r < 0) {
            snprintf(why, sizeof why, "step %d (%s) did not finish within %d s: a hang or a runaway destructor loop",
                     n->step + 1, step_text[n->step], timeout_ms / 1000);
            props = "calls-return";
            verdict = VIOLATION;
            break;
        }
        if (r > 0) {
            take(line);
            if (seen.violation[0]) {
                char id[64] = "";
                sscanf(seen.violation, "%63s", id);
                snprintf(why, sizeof why, "step %d (%s): %s", n->step + 1, step_text[n->step], seen.violation);
                props = property(id) ? property(id)->id : NULL;
                verdict = VIOLATION;
                break;
            }
            if (!seen.done) continue;
        } else if (!reaped) {
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            reaped = 1;
            status_text(status, seen.ended, sizeof seen.ended);
        } else if (!seen.has_result && !seen.events[0] && !seen.ended[0]) {
            snprintf(why, sizeof why, "the process ended before step %d (%s)", n->step + 1, step_text[n->step]);
            props = n->hint;
            verdict = VIOLATION;
            break;
        }
        int target = -1;
        if (strncmp(seen.ended, "signal", 6) == 0) {
            snprintf(why, sizeof why, "step %d (%s): the process died of %s (a crash)", n->step + 1, step_text[n->step],
                     seen.ended);
            props = "calls-return";
            verdict = VIOLATION;
            break;
        }
        if (n->kind == 1) {
            const char *undefined = NULL;
            int v = judge_block(n, &target, &undefined);
            if (v == UNDEFINED) {
                note("  undefined behaviour reached in the block: %s (not a bug)\n", undefined);
                verdict = UNDEFINED;
                break;
            }
            if (v == VIOLATION) {
                snprintf(why, sizeof why, "step %d (the parallel block): no order of its operations consistent with "
                         "real time is allowed by the model", n->step + 1);
                note("  %s\n", why);
                report_block();
                why[0] = 0;
                props = n->hint;
                for (int i = 0; i < BLOCK_OPS; i++) {
                    const char *events = strchr(op_texts[i], '|');
                    if (events && strstr(events, "get=v")) props = "dtor-sees-null";
                    if (events && strstr(events, "(NULL)")) props = "no-dtor-for-null";
                    if (events && strstr(events, ":acted")) props = "no-cancel-in-exit";
                    if (events && strstr(events, "cancel=enabled")) props = "dtor-cancel-disabled";
                    if (strncmp(op_texts[i], "EAGAIN", 6) == 0) props = "create-below-limit";
                    if (strstr(op_texts[i], "ended=signal") || strncmp(op_texts[i], "pending", 7) == 0) props = "calls-return";
                }
                verdict = VIOLATION;
                break;
            }
        } else {
            canon(observed, sizeof observed, seen.result, seen.ended, seen.events);
            for (int i = n->edge; i < n->edge + n->nedges; i++)
                if (strcmp(edges[i].text, observed) == 0) target = edges[i].target;
            if (target < 0) {
                snprintf(why, sizeof why, "step %d (%s) is not allowed by the model", n->step + 1, step_text[n->step]);
                note("  %s\n    observed: %s\n", why, observed);
                show_allowed(n);
                why[0] = 0;
                props = diagnose(n, observed);
                verdict = VIOLATION;
                break;
            }
        }
        node = target;
        reset_seen();
        if (reaped && nodes[node].kind < 2) {
            snprintf(why, sizeof why, "the process ended (status %s) before step %d (%s)", seen.ended[0] ? seen.ended : "?",
                     nodes[node].step + 1, step_text[nodes[node].step]);
            props = nodes[node].hint;
            verdict = VIOLATION;
            break;
        }
    }
    kill(-pid, SIGKILL);
    if (!reaped) waitpid(pid, &status, 0);
    close(fds[0]);
    if (verdict == VIOLATION) {
        if (why[0]) note("  %s\n", why);
        if (props) cite(props);
    }
    if (verdict == VIOLATION && props) snprintf(last_props, sizeof last_props, "%s", props);
    return verdict;
}

static int limits_differ(void) {
    long keys_max = -1, iterations = -1;
#ifdef _SC_THREAD_KEYS_MAX
    keys_max = sysconf(_SC_THREAD_KEYS_MAX);
#endif
#ifdef PTHREAD_KEYS_MAX
    if (keys_max < 0) keys_max = PTHREAD_KEYS_MAX;
#endif
    iterations = API_ITERATIONS;
    if (CHECK_KEYS && keys_max != KEYS_MAX) {
        printf("tsdcheck repro: this program was generated for PTHREAD_KEYS_MAX %d, but the library reports %ld; "
               "generate it again with: tsdcheck repro TRACE --keys-max %ld\n", KEYS_MAX, keys_max, keys_max);
        return 1;
    }
    if (CHECK_ITERATIONS && iterations != ITERATIONS) {
        printf("tsdcheck repro: this program was generated for %d destructor iterations, but the library reports %ld; "
               "generate it again with: tsdcheck repro TRACE --iterations %ld\n", ITERATIONS, iterations, iterations);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int runs = DEFAULT_RUNS, timeout = 10, verbose = 0, bad = 0, undefined = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) timeout = atoi(argv[++i]);
        else if (strcmp(argv[i], "-v") == 0) verbose = 1;
        else {
            printf("usage: %s [-n RUNS] [-t SECONDS] [-v]\n"
                   "  runs the trace RUNS times (default %d), each in a fresh process; exit status 0: the library\n"
                   "  conforms, 1: it showed the violation, 2: the program cannot run here\n", argv[0], DEFAULT_RUNS);
            return 2;
        }
    }
    if (runs < 1 || timeout < 1) {
        printf("tsdcheck repro: -n and -t need a positive number\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (limits_differ()) return 2;
    printf("tsdcheck repro: %s\n", TITLE);
    for (int r = 0; r < runs; r++) {
        int v = run_once((unsigned)r + 1u, timeout * 1000);
        bad += v == VIOLATION;
        undefined += v == UNDEFINED;
        if ((v == VIOLATION && (bad == 1 || verbose)) || (verbose && report[0]) || (runs == 1 && report[0])) {
            if (runs > 1) printf("run %d of %d:\n", r + 1, runs);
            fputs(report, stdout);
        }
    }
    if (runs > 1) printf("tsdcheck repro: rejected in %d of %d runs (%d reached undefined behaviour)\n", bad, runs, undefined);
    if (bad) {
        printf("tsdcheck repro: VIOLATION of %s\n", last_props[0] ? last_props : "the model (see above)");
        return 1;
    }
    printf("tsdcheck repro: conforms%s\n", undefined ? " (up to undefined behaviour, which is not judged)" : "");
    return 0;
}
