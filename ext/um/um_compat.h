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

// Futex wait/wake: Linux 6.7, liburing 2.5. The opcodes follow the kernel's
// enum io_uring_op (IORING_OP_SENDMSG_ZC is 48 in liburing 2.3's header).
#include <linux/futex.h>
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif
#ifndef FUTEX2_PRIVATE
#define FUTEX2_PRIVATE FUTEX_PRIVATE_FLAG
#endif
#ifndef HAVE_IO_URING_PREP_FUTEX_WAIT
#define UM_IORING_OP_FUTEX_WAIT 51
#define UM_IORING_OP_FUTEX_WAKE 52
static inline void io_uring_prep_futex_wait(struct io_uring_sqe *sqe, uint32_t *futex, uint64_t val,
  uint64_t mask, uint32_t futex_flags, unsigned int flags) {
  io_uring_prep_rw(UM_IORING_OP_FUTEX_WAIT, sqe, (int)futex_flags, futex, 0, val);
  sqe->rw_flags = flags;   // sqe->futex_flags in newer headers: the same union
  sqe->addr3 = mask;
}
static inline void io_uring_prep_futex_wake(struct io_uring_sqe *sqe, uint32_t *futex, uint64_t val,
  uint64_t mask, uint32_t futex_flags, unsigned int flags) {
  io_uring_prep_rw(UM_IORING_OP_FUTEX_WAKE, sqe, (int)futex_flags, futex, 0, val);
  sqe->rw_flags = flags;
  sqe->addr3 = mask;
}
#endif

// Bind and listen: Linux 6.11, liburing 2.7. The opcodes follow the kernel's
// enum io_uring_op (..., FTRUNCATE 55, BIND 56, LISTEN 57). The kernel reads
// the address when the SQE is submitted, its length from sqe->addr2 (the
// off field); the backlog from sqe->len.
#ifdef HAVE_IO_URING_PREP_BIND
#define UM_IORING_OP_BIND IORING_OP_BIND
#else
#define UM_IORING_OP_BIND 56
static inline void io_uring_prep_bind(struct io_uring_sqe *sqe, int fd, struct sockaddr *addr, socklen_t addrlen) {
  io_uring_prep_rw(UM_IORING_OP_BIND, sqe, fd, addr, 0, addrlen);
}
#endif
#ifdef HAVE_IO_URING_PREP_LISTEN
#define UM_IORING_OP_LISTEN IORING_OP_LISTEN
#else
#define UM_IORING_OP_LISTEN 57
static inline void io_uring_prep_listen(struct io_uring_sqe *sqe, int fd, int backlog) {
  io_uring_prep_rw(UM_IORING_OP_LISTEN, sqe, fd, NULL, (unsigned)backlog, 0);
}
#endif

// Waitid: Linux 6.7, liburing 2.5. IORING_OP_WAITID is 50 in the kernel's
// enum io_uring_op (READ_MULTISHOT 49, WAITID 50). The kernel's
// io_waitid_prep reads idtype from sqe->len, id from sqe->fd, options from
// sqe->file_index, the siginfo pointer from sqe->addr2, and wants
// sqe->waitid_flags (the rw_flags union) to be 0.
#include <signal.h>
#include <sys/wait.h>
#ifndef HAVE_IO_URING_PREP_WAITID
#define UM_IORING_OP_WAITID 50
static inline void io_uring_prep_waitid(struct io_uring_sqe *sqe, idtype_t idtype, id_t id,
  siginfo_t *infop, int options, unsigned int flags) {
  io_uring_prep_rw(UM_IORING_OP_WAITID, sqe, (int)id, NULL, (unsigned)idtype, 0);
  sqe->rw_flags = (__kernel_rwf_t)flags;  // sqe->waitid_flags in newer headers
  sqe->file_index = (__u32)options;
  sqe->addr2 = (__u64)(uintptr_t)infop;
}
#endif

// Incremental buffer consumption: Linux 6.12, liburing 2.8. Older headers
// call the flags field of struct io_uring_buf_reg "pad".
#ifdef HAVE_CONST_IOU_PBUF_RING_INC
#define UM_BUF_REG_FLAGS(reg) ((reg).flags)
#else
#define IOU_PBUF_RING_INC 2
#define UM_BUF_REG_FLAGS(reg) ((reg).pad)
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
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
