// Direct I/O: transfers done as syscalls on the machine's thread instead of
// ring ops, where that is faster and cannot hold the thread up for long.
//
// 1. Direct attempts: a read, write, recv or send done as a syscall that
// cannot wait, instead of a ring op, when the machine is busy.
//
// With thousands of fibers each waiting on its own op, every op that goes
// through the ring costs a fiber switch and keeps its fiber (and its stack)
// alive until the completion is reaped, after every other runnable fiber
// has had its turn. An attempt that finds the fd ready completes at once,
// without a switch: the fiber goes on, and often ends, before the others
// run. Below UM_DIRECT_OPS ops in use the ring's batching is faster, so the
// machine only tries directly past that.
//
// Fairness: at most UM_DIRECT_STREAK_MAX attempts succeed in a row without
// a fiber switch (um_switch resets the count); the next transfer goes
// through the ring and lets the other fibers run.
//
// An attempt that finds nothing ready (EAGAIN), or an fd whose file takes
// no RWF_NOWAIT (EOPNOTSUPP), falls back to the ring op.
//
// 2. Inline file writes: most file systems (ext4 and tmpfs among them) take
// no non-blocking buffered write, so io_uring hands every write to a
// regular file to a kernel worker thread (io-wq): about 10 us of thread
// hand-off for a write that copies 1 KiB into the page cache in 1 us (1 KiB
// writes measured here: 15.8 us per UM#write, 6.5 us per File#write). Writes
// of up to UM_INLINE_WRITE_MAX bytes to an fd the machine knows to be a
// regular file are done on the machine's thread, as Ruby's File#write does;
// longer ones still go to the ring, so one large write does not stall the
// other fibers.
//
// The machine knows which fds are regular files from #open (which stats
// what it opened); #close and #close_async forget it. An fd closed some
// other way keeps its kind until the number is reused: such an inline write
// first tries RWF_NOWAIT, which a pipe or a socket takes (so it cannot
// block on one), and only a file that refuses it (EOPNOTSUPP) gets the
// plain write. The fiber scheduler knows it from the IO object itself (its
// file is stated once, on the first write): its writes skip the attempt.
#include "um.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

bool um_direct_wanted(struct um *m) {
  return m->metrics.ops_allocated - m->metrics.ops_free >= UM_DIRECT_OPS &&
    m->direct_streak < UM_DIRECT_STREAK_MAX;
}

long um_direct_transfer(enum um_op_kind kind, int fd, void *ptr, size_t len, int64_t file_offset, int flags) {
  struct iovec iov = { .iov_base = ptr, .iov_len = len };
  ssize_t n;
  switch (kind) {
    case OP_READ: n = preadv2(fd, &iov, 1, (off_t)file_offset, RWF_NOWAIT); break;
    case OP_WRITE: n = pwritev2(fd, &iov, 1, (off_t)file_offset, RWF_NOWAIT); break;
    case OP_RECV: n = recv(fd, ptr, len, flags | MSG_DONTWAIT); break;
    default: n = send(fd, ptr, len, flags | MSG_DONTWAIT | MSG_NOSIGNAL); break;
  }
  return n >= 0 ? (long)n : (errno == EWOULDBLOCK ? -EAGAIN : -errno);
}

// A read of a regular file with RWF_NOWAIT stops at the first page that is
// not cached, where the ring's read goes on to the end of what was asked
// (or EOF): a short direct read of a regular file is not an answer, the
// ring reads the rest. On pipes and sockets a short read is the answer.
bool um_direct_short_file_read(int fd, long n, size_t len) {
  if (n <= 0 || (size_t)n >= len) return false;
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

enum { UM_FD_UNKNOWN = 0, UM_FD_REGULAR = 1, UM_FD_OTHER = 2 };

static void um_fd_kind_set(struct um *m, int fd, uint8_t kind) {
  if (fd < 0) return;
  if ((size_t)fd >= m->fd_kinds_len) {
    if (kind == UM_FD_UNKNOWN) return;
    size_t len = m->fd_kinds_len ? m->fd_kinds_len : 64;
    while (len <= (size_t)fd) len *= 2;
    uint8_t *kinds = realloc(m->fd_kinds, len);
    if (!kinds) return; // unknown is always a safe answer
    memset(kinds + m->fd_kinds_len, 0, len - m->fd_kinds_len);
    m->fd_kinds = kinds;
    m->fd_kinds_len = len;
  }
  m->fd_kinds[fd] = kind;
}

static uint8_t um_fd_kind(struct um *m, int fd) {
  return fd >= 0 && (size_t)fd < m->fd_kinds_len ? m->fd_kinds[fd] : UM_FD_UNKNOWN;
}

void um_fd_learn(struct um *m, int fd) {
  struct stat st;
  if (fstat(fd, &st) == 0) um_fd_kind_set(m, fd, S_ISREG(st.st_mode) ? UM_FD_REGULAR : UM_FD_OTHER);
}

void um_fd_forget(struct um *m, int fd) {
  um_fd_kind_set(m, fd, UM_FD_UNKNOWN);
}

void um_fd_kinds_free(struct um *m) {
  free(m->fd_kinds);
  m->fd_kinds = NULL;
  m->fd_kinds_len = 0;
}

bool um_fd_regular_p(struct um *m, int fd) {
  return um_fd_kind(m, fd) == UM_FD_REGULAR;
}

// With nowait, RWF_NOWAIT first (an fd whose kind may be stale): only a
// file that refuses it (EOPNOTSUPP) gets the plain write.
long um_inline_write(int fd, const void *ptr, size_t len, int64_t file_offset, bool nowait) {
  if (nowait) {
    long n;
    do n = um_direct_transfer(OP_WRITE, fd, (void *)ptr, len, file_offset, 0);
    while (n == -EINTR);
    if (n != -EOPNOTSUPP) return n;
  }
  ssize_t n;
  do n = file_offset < 0 ? write(fd, ptr, len) : pwrite(fd, ptr, len, (off_t)file_offset);
  while (n < 0 && errno == EINTR);
  return n >= 0 ? (long)n : (errno == EWOULDBLOCK ? -EAGAIN : -errno);
}
