/*
 * Floor benchmark: GROUPS pipes (or, built with -DBENCH_SOCKETPAIR, Unix
 * stream socketpairs), each with a writer sending COUNT messages of 1 KiB
 * (write, or send) and a reader reading (read, or recv; at most 1 KiB at a
 * time) until it has them all. One thread, one io_uring, one op in flight per
 * writer and per reader.
 *
 *   cc -O2 -Wall -Wextra -o pipe benchmark/c/stream.c -luring
 *   cc -O2 -Wall -Wextra -DBENCH_SOCKETPAIR -o socketpair benchmark/c/stream.c -luring
 *   ./pipe GROUPS COUNT MIN_TIME
 *
 * Every byte group g sends is (g & 0xff); the reader checks each byte it gets
 * (a memcmp against a 1 KiB reference). Build with -DBENCH_NO_VERIFY to drop
 * the check.
 */
#include "common.h"

#include <fcntl.h>
#include <sys/socket.h>

#ifdef BENCH_SOCKETPAIR
#define WRITE_NAME "send"
#define READ_NAME "recv"
#else
#define WRITE_NAME "write"
#define READ_NAME "read"
#endif

enum { ROLE_WRITER = 0, ROLE_READER = 1 };

struct group {
  int rfd, wfd;
  unsigned long long w_msgs;  /* complete messages written */
  unsigned w_off;             /* bytes of the current message already written */
  unsigned long long r_bytes; /* bytes received */
  unsigned char rbuf[BENCH_MSG_SIZE];
};

/* pattern[v] is one message of bytes all equal to v; writers of groups with
 * the same (g & 0xff) send from the same (read-only) buffer. */
static unsigned char pattern[256][BENCH_MSG_SIZE];

static struct group *groups;
static uint32_t *ready;     /* ops ready to be submitted: (g << 1) | role */
static unsigned nready;

static void prep_op(struct io_uring_sqe *sqe, uint32_t op) {
  unsigned g = op >> 1;
  struct group *gr = &groups[g];
  const unsigned char *src = pattern[g & 0xff] + gr->w_off;
  unsigned len = BENCH_MSG_SIZE - gr->w_off;
#ifdef BENCH_SOCKETPAIR
  if ((op & 1) == ROLE_WRITER) io_uring_prep_send(sqe, gr->wfd, src, len, 0);
  else io_uring_prep_recv(sqe, gr->rfd, gr->rbuf, BENCH_MSG_SIZE, 0);
#else
  if ((op & 1) == ROLE_WRITER) io_uring_prep_write(sqe, gr->wfd, src, len, (__u64)-1);
  else io_uring_prep_read(sqe, gr->rfd, gr->rbuf, BENCH_MSG_SIZE, (__u64)-1);
#endif
  io_uring_sqe_set_data64(sqe, op);
}

/* Queues an SQE for every ready op, submitting early when the SQ is full. */
static void fill(struct io_uring *ring) {
  unsigned i = 0;
  while (i < nready) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) {
      int ret = io_uring_submit(ring);
      if (ret < 0 && ret != -EINTR) bench_fatal("io_uring_submit: %s", strerror(-ret));
      continue;
    }
    prep_op(sqe, ready[i++]);
  }
  nready = 0;
}

/* Handles one completion; returns 1 when it finishes a reader. */
static int complete(uint32_t op, int res, unsigned long long count) {
  unsigned g = op >> 1;
  struct group *gr = &groups[g];

  if ((op & 1) == ROLE_WRITER) {
    if (res <= 0)
      bench_fatal("group %u: " WRITE_NAME ": %s", g, res < 0 ? strerror(-res) : "0 bytes");
    gr->w_off += (unsigned)res;
    if (gr->w_off > BENCH_MSG_SIZE) bench_fatal("group %u: " WRITE_NAME ": too many bytes", g);
    if (gr->w_off == BENCH_MSG_SIZE) {
      gr->w_off = 0;
      if (++gr->w_msgs == count) return 0;
    }
    ready[nready++] = op;
    return 0;
  }

  if (res <= 0)
    bench_fatal("group %u: " READ_NAME ": %s after %llu bytes", g,
                res < 0 ? strerror(-res) : "end of file", gr->r_bytes);
#ifndef BENCH_NO_VERIFY
  if (memcmp(gr->rbuf, pattern[g & 0xff], (size_t)res))
    bench_fatal("group %u: " READ_NAME ": wrong data after %llu bytes", g, gr->r_bytes);
#endif
  gr->r_bytes += (unsigned)res;
  unsigned long long total = count * BENCH_MSG_SIZE;
  if (gr->r_bytes > total) bench_fatal("group %u: " READ_NAME ": too many bytes", g);
  if (gr->r_bytes == total) return 1;
  ready[nready++] = op;
  return 0;
}

/* One round: make the pipes (socketpairs) and the ring, run all groups to completion, close
 * everything. Returns the number of messages received. */
static unsigned long long run_round(const struct bench_args *a) {
  unsigned n = a->groups;
  for (unsigned g = 0; g < n; g++) {
    int fds[2];
#ifdef BENCH_SOCKETPAIR
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds))
      bench_fatal("socketpair: %s", strerror(errno));
#else
    if (pipe2(fds, O_CLOEXEC)) bench_fatal("pipe2: %s", strerror(errno));
#endif
    struct group *gr = &groups[g];
    gr->rfd = fds[0];
    gr->wfd = fds[1];
    gr->w_msgs = 0;
    gr->w_off = 0;
    gr->r_bytes = 0;
    ready[nready++] = (g << 1) | ROLE_WRITER;
    ready[nready++] = (g << 1) | ROLE_READER;
  }

  struct io_uring ring;
  bench_ring_init(&ring, 2 * n);

  unsigned readers_left = n;
  while (readers_left) {
    fill(&ring);
    int ret = io_uring_submit_and_wait(&ring, 1);
    if (ret < 0 && ret != -EINTR) bench_fatal("io_uring_submit_and_wait: %s", strerror(-ret));

    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      seen++;
      readers_left -= complete((uint32_t)io_uring_cqe_get_data64(cqe), cqe->res, a->count);
    }
    io_uring_cq_advance(&ring, seen);
  }

  io_uring_queue_exit(&ring);
  unsigned long long bytes = 0;
  for (unsigned g = 0; g < n; g++) {
    bytes += groups[g].r_bytes;
    close(groups[g].rfd);
    close(groups[g].wfd);
  }
  return bytes / BENCH_MSG_SIZE;
}

int main(int argc, char **argv) {
  struct bench_args a;
  bench_parse_args(argc, argv, &a);
  bench_raise_nofile_for(a.groups);

  for (int v = 0; v < 256; v++) memset(pattern[v], v, BENCH_MSG_SIZE);
  groups = calloc(a.groups, sizeof(*groups));
  ready = calloc(2 * (size_t)a.groups, sizeof(*ready));
  if (!groups || !ready) bench_fatal("out of memory");

  struct bench_timer t;
  unsigned long long ops = 0;
  bench_start(&t, a.min_time);
  do ops += run_round(&a);
  while (bench_more(&t));
  bench_report(&t, ops);
  return 0;
}
