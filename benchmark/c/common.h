/*
 * Shared helpers for the plain-C "floor" benchmarks (stream.c, built as pipe and socketpair):
 * argument parsing, clocks, RLIMIT_NOFILE raising, ring setup and the one
 * line of JSON the Ruby harness reads.
 *
 * Command line: PROG GROUPS COUNT MIN_TIME
 * Output (stdout, one line):
 *   {"ops":N,"wall":S,"cpu":S,"rss_kb":K,"base_rss_kb":K,"rounds":R}
 * Bad arguments: usage line on stderr, exit 2. Runtime failure: exit 1.
 */
#ifndef UM_BENCH_COMMON_H
#define UM_BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

/* Size of one message, and the most one read may ask for. */
#define BENCH_MSG_SIZE 1024

/* The CQ must hold 2 * GROUPS completions; the kernel caps the CQ at 65536
 * entries (IORING_MAX_CQ_ENTRIES), hence this bound on GROUPS. */
#define BENCH_MAX_GROUPS 32768

/* Largest SQ we ask for; with more ops than this ready we submit in batches. */
#define BENCH_MAX_SQ 4096

/* Ring setup flags besides IORING_SETUP_CQSIZE: the ones UringMachine itself
 * tries first, so both sides run on the same kind of ring. A kernel that
 * refuses them gets a plain ring. Build with -DBENCH_SETUP_FLAGS=0 for the
 * plain ring always. */
#ifndef BENCH_SETUP_FLAGS
#define BENCH_SETUP_FLAGS (IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | \
                           IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN)
#endif

struct bench_args {
  unsigned groups;        /* 1 .. BENCH_MAX_GROUPS */
  unsigned long long count; /* messages per group, >= 1 */
  double min_time;        /* seconds, >= 0 */
};

static inline void bench_usage(const char *prog, const char *why) {
  if (why) fprintf(stderr, "%s: %s\n", prog, why);
  fprintf(stderr, "usage: %s GROUPS COUNT MIN_TIME\n"
                  "  GROUPS    number of writer/reader pairs, 1..%d\n"
                  "  COUNT     messages of %d bytes per group, >= 1\n"
                  "  MIN_TIME  minimum total run time in seconds (float, >= 0)\n",
          prog, BENCH_MAX_GROUPS, BENCH_MSG_SIZE);
  exit(2);
}

static inline void bench_fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

/* Parses a decimal integer that must fill the whole string. */
static inline int bench_parse_ull(const char *s, unsigned long long *out) {
  if (!s || !*s) return -1;
  const char *p = s;
  while (*p == ' ' || *p == '\t') p++;
  if (*p == '-') return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end) return -1;
  *out = v;
  return 0;
}

static inline void bench_parse_args(int argc, char **argv, struct bench_args *a) {
  const char *prog = argc > 0 ? argv[0] : "bench";
  if (argc != 4) bench_usage(prog, "expected 3 arguments");

  unsigned long long g, c;
  if (bench_parse_ull(argv[1], &g) || g < 1 || g > BENCH_MAX_GROUPS)
    bench_usage(prog, "GROUPS must be an integer in 1..32768");
  if (bench_parse_ull(argv[2], &c) || c < 1 ||
      c > (unsigned long long)LLONG_MAX / BENCH_MSG_SIZE)
    bench_usage(prog, "COUNT must be a positive integer");

  char *end;
  errno = 0;
  double t = strtod(argv[3], &end);
  if (errno || end == argv[3] || *end || !isfinite(t) || t < 0)
    bench_usage(prog, "MIN_TIME must be a number of seconds >= 0");

  a->groups = (unsigned)g;
  a->count = c;
  a->min_time = t;
}

static inline double bench_clock(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline long bench_maxrss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* Raises RLIMIT_NOFILE so that `want` descriptors can be open: the soft limit
 * up to the hard one, and the hard one too if that is not enough (needs
 * CAP_SYS_RESOURCE). If `want` cannot be reached, settles for the highest
 * limit it can get as long as that is at least `need` (the descriptors really
 * used); otherwise exits 1 with a clear message. */
static inline void bench_raise_nofile(rlim_t want, rlim_t need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl))
    bench_fatal("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want) return;

  struct rlimit nl = rl;
  nl.rlim_cur = want;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) nl.rlim_max = want;
  if (setrlimit(RLIMIT_NOFILE, &nl) == 0) return;
  int err = errno;

  /* Could not reach `want` (hard limit too low and no CAP_SYS_RESOURCE):
   * the hard limit is still fine if it covers what is really used. */
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max >= need) {
    nl = rl;
    nl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &nl) == 0) return;
    err = errno;
  }
  bench_fatal("cannot raise RLIMIT_NOFILE to %llu (at least %llu needed; soft %llu, "
              "hard %llu): %s; run with a higher `ulimit -n` (hard limit) or fewer groups",
              (unsigned long long)want, (unsigned long long)need,
              (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
              strerror(err));
}

/* The descriptor limit asked for GROUPS groups of two descriptors each:
 * twice the need plus slack, falling back to the real need plus a little
 * (stdio, the ring) when the hard limit is lower. */
static inline void bench_raise_nofile_for(unsigned groups) {
  rlim_t fds = (rlim_t)groups * 2;
  bench_raise_nofile(fds * 2 + 64, fds + 16);
}

static inline unsigned bench_roundup_pow2(unsigned v) {
  unsigned p = 1;
  while (p < v) p <<= 1;
  return p;
}

/* A ring for `inflight` ops at once: SQ rounded up to a power of two and
 * capped at BENCH_MAX_SQ, CQ large enough for every op in flight. */
static inline void bench_ring_init(struct io_uring *ring, unsigned inflight) {
  unsigned sq = bench_roundup_pow2(inflight);
  if (sq > BENCH_MAX_SQ) sq = BENCH_MAX_SQ;
  struct io_uring_params p;
  memset(&p, 0, sizeof(p));
  p.flags = IORING_SETUP_CQSIZE | (BENCH_SETUP_FLAGS);
  p.cq_entries = inflight > sq ? inflight : sq;
  int ret = io_uring_queue_init_params(sq, ring, &p);
  if (ret == -EINVAL && (BENCH_SETUP_FLAGS) != 0) {
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = inflight > sq ? inflight : sq;
    ret = io_uring_queue_init_params(sq, ring, &p);
  }
  if (ret < 0)
    bench_fatal("io_uring_queue_init_params(sq=%u, cq=%u): %s", sq,
                inflight > sq ? inflight : sq, strerror(-ret));
}

static inline void bench_print_json(unsigned long long ops, double wall, double cpu,
                                    long rss_kb, long base_rss_kb,
                                    unsigned long long rounds) {
  printf("{\"ops\":%llu,\"wall\":%.9f,\"cpu\":%.9f,\"rss_kb\":%ld,"
         "\"base_rss_kb\":%ld,\"rounds\":%llu}\n",
         ops, wall, cpu, rss_kb, base_rss_kb, rounds);
  if (fflush(stdout)) exit(1);
}

/* Round timing: bench_start() before the first round, bench_more() after
 * each round (true while the total wall time is below MIN_TIME), bench_report()
 * at the end. wall and cpu cover exactly the rounds. */
struct bench_timer {
  double min_time;
  double wall0, cpu0, wall_end, cpu_end;
  long base_rss_kb;
  unsigned long long rounds;
};

static inline void bench_start(struct bench_timer *t, double min_time) {
  t->min_time = min_time;
  t->rounds = 0;
  t->base_rss_kb = bench_maxrss_kb();
  t->wall0 = bench_clock(CLOCK_MONOTONIC);
  t->cpu0 = bench_clock(CLOCK_PROCESS_CPUTIME_ID);
  t->wall_end = t->wall0;
  t->cpu_end = t->cpu0;
}

static inline int bench_more(struct bench_timer *t) {
  t->rounds++;
  t->cpu_end = bench_clock(CLOCK_PROCESS_CPUTIME_ID);
  t->wall_end = bench_clock(CLOCK_MONOTONIC);
  return t->wall_end - t->wall0 < t->min_time;
}

static inline void bench_report(const struct bench_timer *t, unsigned long long ops) {
  bench_print_json(ops, t->wall_end - t->wall0, t->cpu_end - t->cpu0, bench_maxrss_kb(),
                   t->base_rss_kb, t->rounds);
}

#endif
