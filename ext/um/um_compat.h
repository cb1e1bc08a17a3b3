// What an older liburing (Debian 12 ships 2.3) lacks, supplied in one place.
// extconf.rb detects each helper with have_func / have_const; the kernel
// features behind them are probed at run time (um_ring.c).
#ifndef UM_COMPAT_H
#define UM_COMPAT_H

#include <liburing.h>

// Multishot timeouts: Linux 6.4, liburing 2.4.
#ifndef IORING_TIMEOUT_MULTISHOT
#define IORING_TIMEOUT_MULTISHOT (1U << 6)
#endif

// io_uring_prep_cancel64: liburing 2.2.
#ifndef HAVE_IO_URING_PREP_CANCEL64
static inline void io_uring_prep_cancel64(struct io_uring_sqe *sqe, __u64 user_data, int flags) {
  io_uring_prep_rw(IORING_OP_ASYNC_CANCEL, sqe, -1, NULL, 0, 0);
  sqe->addr = user_data;
  sqe->cancel_flags = (__u32)flags;
}
#endif

// io_uring_get_events: liburing 2.3. Flushes deferred task work and posts
// completions without waiting.
#ifndef HAVE_IO_URING_GET_EVENTS
static inline int io_uring_get_events(struct io_uring *ring) {
  return io_uring_enter(ring->ring_fd, 0, 0, IORING_ENTER_GETEVENTS, NULL);
}
#endif

// io_uring_submit_and_get_events: liburing 2.3.
#ifndef HAVE_IO_URING_SUBMIT_AND_GET_EVENTS
static inline int io_uring_submit_and_get_events(struct io_uring *ring) {
  int ret = io_uring_submit(ring);
  io_uring_get_events(ring);
  return ret;
}
#endif

#endif
