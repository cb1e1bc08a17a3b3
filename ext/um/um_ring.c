// Ring setup, feature probing, submission and reaping of completions.
#include "um.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <ruby/thread.h>

// user_data of cancel requests: their completions carry nothing to act on.
#define UM_CANCEL_USER_DATA 1

int um_kernel_version(void) {
  static int version = -1;
  if (version >= 0) return version;

  struct utsname u;
  int major = 0, minor = 0;
  if (uname(&u) == 0) sscanf(u.release, "%d.%d", &major, &minor);
  version = major * 100 + minor;
  return version;
}

void um_require_kernel(int version, const char *feature) {
  int running = um_kernel_version();
  if (running >= version) return;

  rb_raise(eUMError, "%s needs Linux %d.%d or newer (this kernel is %d.%d)",
    feature, version / 100, version % 100, running / 100, running % 100);
}

static int io_uring_disabled_sysctl(void) {
  FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
  if (!f) return -1;
  int value = -1;
  if (fscanf(f, "%d", &value) != 1) value = -1;
  fclose(f);
  return value;
}

static void raise_setup_error(int err) {
  switch (err) {
    case EPERM: {
      int disabled = io_uring_disabled_sysctl();
      if (disabled > 0)
        rb_raise(eUMError,
          "io_uring is disabled on this system (kernel.io_uring_disabled = %d); "
          "set it to 0 with sysctl, or run as a member of kernel.io_uring_group", disabled);
      rb_raise(eUMError,
        "io_uring is not permitted (EPERM): a seccomp profile blocks it, as Docker's default "
        "profile does; run with a profile that allows io_uring_setup/io_uring_enter/io_uring_register");
    }
    case ENOSYS:
      rb_raise(eUMError,
        "io_uring is not available (ENOSYS): the kernel lacks it or a seccomp filter hides it; "
        "UringMachine needs Linux 6.1 or newer with io_uring enabled");
    case ENOMEM:
      rb_raise(eUMError,
        "io_uring setup failed (ENOMEM): not enough locked memory for the ring; "
        "try a smaller size or raise RLIMIT_MEMLOCK (ulimit -l)");
    default:
      rb_raise(eUMError, "io_uring setup failed: %s (errno %d)", strerror(err), err);
  }
}

// Flags are tried from the most capable set down; an older kernel answers
// EINVAL for a flag it does not know.
//   SUBMIT_ALL (5.18): keep submitting the batch when one SQE fails early
//   COOP_TASKRUN (5.19): no IPI to interrupt us when a completion is posted
//   SINGLE_ISSUER (6.0) + DEFER_TASKRUN (6.1): completions are processed only
//     when we ask for them, in our thread, with fewer context switches
// Sidecar mode takes none of the last three: the sidecar thread waits for
// completions, so they must be posted without our thread entering the
// kernel (task work interrupts our futex wait, as without COOP_TASKRUN).
static int um_ring_init(struct um *m, unsigned size, bool sqpoll, double sqpoll_idle, bool sidecar) {
  unsigned attempts[3];
  int count = 0;
  if (sqpoll) {
    attempts[count++] = IORING_SETUP_SQPOLL | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER;
    attempts[count++] = IORING_SETUP_SQPOLL | IORING_SETUP_SUBMIT_ALL;
    attempts[count++] = IORING_SETUP_SQPOLL;
  }
  else if (sidecar) {
    attempts[count++] = IORING_SETUP_SUBMIT_ALL;
    attempts[count++] = 0;
  }
  else {
    attempts[count++] = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    attempts[count++] = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
    attempts[count++] = 0;
  }

  int ret = -EINVAL;
  for (int i = 0; i < count; i++) {
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = attempts[i] | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    p.cq_entries = size * 4;
    if (sqpoll) p.sq_thread_idle = (unsigned)(sqpoll_idle * 1000);

    ret = io_uring_queue_init_params(size, &m->ring, &p);
    if (ret == 0) {
      m->setup_flags = p.flags;
      m->size = p.sq_entries;
      m->ring_bytes = p.sq_entries * (sizeof(struct io_uring_sqe) + sizeof(unsigned)) +
        p.cq_entries * sizeof(struct io_uring_cqe);
      return 0;
    }
    if (ret != -EINVAL) break;
  }
  return ret;
}

// Out of fds or memory may only mean that dropped machines still wait for
// the GC to close their rings: collect once and try again.
static bool um_setup_retry_after_gc(int err, bool *retried) {
  if (*retried || (err != EMFILE && err != ENFILE && err != ENOMEM)) return false;
  *retried = true;
  rb_gc();
  return true;
}

void um_ring_setup(struct um *m, unsigned size, bool sqpoll, double sqpoll_idle, bool sidecar) {
  bool retried = false;
  int ret;
  do ret = um_ring_init(m, size, sqpoll, sqpoll_idle, sidecar);
  while (ret < 0 && um_setup_retry_after_gc(-ret, &retried));
  if (ret < 0) raise_setup_error(-ret);

  m->ring_initialized = true;
  // The ring's memory is the kernel's: counted here, it shows in the GC's
  // malloc figures and in ObjectSpace.memsize_of.
  rb_gc_adjust_memory_usage((ssize_t)m->ring_bytes);
  m->sqpoll_mode = sqpoll;
  m->defer_taskrun = (m->setup_flags & IORING_SETUP_DEFER_TASKRUN) != 0;

  retried = false;
  int err;
  do {
    m->wakeup_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    err = m->wakeup_fd < 0 ? errno : 0;
  } while (err && um_setup_retry_after_gc(err, &retried));
  if (err) {
    um_ring_teardown(m);
    rb_syserr_fail(err, "eventfd");
  }
  if (sidecar) um_sidecar_start(m); // tears the ring down itself when it fails
}

void um_ring_teardown(struct um *m) {
  um_sidecar_stop(m);
  if (m->ring_initialized) {
    io_uring_queue_exit(&m->ring);
    m->ring_initialized = false;
    rb_gc_adjust_memory_usage(-(ssize_t)m->ring_bytes);
  }
  if (m->wakeup_fd >= 0) {
    close(m->wakeup_fd);
    m->wakeup_fd = -1;
  }
}

// Whether the fd is one the machine itself uses (its ring, its eventfd, its
// sidecar's): closing one through the machine would break it.
bool um_machine_fd_p(struct um *m, int fd) {
  if (m->ring_initialized && fd == m->ring.ring_fd) return true;
  if (fd == m->wakeup_fd) return true;
  return um_sidecar_fd_p(m, fd);
}

// #close: gives back the ring, its memory and fds now instead of at GC.
// The op records stay until the machine is freed: AsyncOps may still hold
// some. In a forked child the ring is the parent's: only our mapping and fd
// copies go.
void um_machine_close(struct um *m) {
  if (m->closed) return;
  m->closed = true;
  um_ring_teardown(m);
}

static void um_process_cqe(struct um *m, struct io_uring_cqe *cqe) {
  uint64_t user_data = io_uring_cqe_get_data64(cqe);
  if (user_data == UM_CANCEL_USER_DATA) return;
  if (user_data == 0) {
    // a fire-and-forget operation without a record (close_async) failed
    m->metrics.async_errors++;
    return;
  }

  struct um_op *op = (struct um_op *)(uintptr_t)user_data;
  if (op == m->wakeup_op) {
    m->wakeup_armed = false;
    return;
  }
  um_op_complete(m, op, (op->flags & OP_F_UNSENT) ? -ECANCELED : cqe->res, cqe->flags);
}

// Processes every completion in the CQ; returns how many.
static unsigned um_process_ready_cqes(struct um *m) {
  unsigned head, count = 0;
  struct io_uring_cqe *cqe;
  io_uring_for_each_cqe(&m->ring, head, cqe) {
    um_process_cqe(m, cqe);
    count++;
  }
  if (count) io_uring_cq_advance(&m->ring, count);
  return count;
}

int um_submit(struct um *m) {
  m->submitted_seq = m->sqe_seq;
  while (true) {
    int ret = io_uring_submit(&m->ring);
    if (ret >= 0) return ret;
    // The CQ is backed up: make room and try again.
    if (ret == -EBUSY || ret == -EAGAIN) {
      io_uring_get_events(&m->ring);
      um_process_ready_cqes(m);
      continue;
    }
    if (ret == -EINTR) continue;
    rb_syserr_fail(-ret, "io_uring_submit");
  }
}

struct io_uring_sqe *um_get_sqe(struct um *m, struct um_op *op) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&m->ring);
  while (!sqe) {
    // The SQ is full: flush it and go on.
    um_submit(m);
    if (m->sqpoll_mode) io_uring_sqring_wait(&m->ring);
    sqe = io_uring_get_sqe(&m->ring);
  }
  if (op) {
    io_uring_sqe_set_data(sqe, op);
    op->sqe = sqe;
    op->sqe_seq = ++m->sqe_seq;
    op->flags |= OP_F_IN_KERNEL;
    m->metrics.ops_pending++;
    m->metrics.total_ops++;
  }
  else
    io_uring_sqe_set_data64(sqe, 0);
  return sqe;
}

void um_op_cancel(struct um *m, struct um_op *op) {
  if (!(op->flags & OP_F_IN_KERNEL) || (op->flags & OP_F_CANCELED)) return;

  op->flags |= OP_F_CANCELED;
  if (op->sqe_seq > m->submitted_seq) {
    // Not submitted yet: the kernel never sees the operation, only a NOP
    // that completes its record (as -ECANCELED). Nothing can have moved.
    struct io_uring_sqe *sqe = op->sqe;
    __u8 link = sqe->flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK);
    io_uring_prep_nop(sqe);
    sqe->flags = link;
    io_uring_sqe_set_data(sqe, op);
    op->flags |= OP_F_UNSENT;
    return;
  }
  struct io_uring_sqe *sqe = um_get_sqe(m, NULL);
  io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
  io_uring_sqe_set_data64(sqe, UM_CANCEL_USER_DATA);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

// The machine's read on its eventfd, armed before blocking so that another
// thread can make the wait return (#wakeup, #schedule from another thread).
static void um_arm_wakeup(struct um *m) {
  if (m->wakeup_armed) return;

  struct io_uring_sqe *sqe = um_get_sqe(m, NULL);
  io_uring_prep_read(sqe, m->wakeup_fd, &m->wakeup_buf, sizeof(m->wakeup_buf), 0);
  io_uring_sqe_set_data(sqe, m->wakeup_op);
  m->wakeup_armed = true;
}

void um_wakeup(struct um *m) {
  uint64_t one = 1;
  ssize_t ret;
  do {
    ret = write(m->wakeup_fd, &one, sizeof(one));
  } while (ret < 0 && errno == EINTR);
  // EAGAIN means the counter is saturated: a wakeup is pending anyway.
}

struct um_wait_ctx {
  struct um *m;
  int ret;
};

static void *um_wait_without_gvl(void *ptr) {
  struct um_wait_ctx *ctx = ptr;
  ctx->ret = io_uring_submit_and_wait(&ctx->m->ring, 1);
  return NULL;
}

// Sidecar mode: submit, then let the sidecar thread tell us when
// completions are there (it is the one that waits in the kernel).
static void um_reap_sidecar(struct um *m) {
  um_arm_wakeup(m);
  if (io_uring_sq_ready(&m->ring)) um_submit(m);
  double t0 = m->profile_mode ? um_monotonic_time() : 0;
  if (!io_uring_cq_ready(&m->ring)) {
    um_sidecar_wait(m);
    m->metrics.total_waits++;
  }
  if (m->profile_mode) m->metrics.time_total_wait += um_monotonic_time() - t0;
  um_process_ready_cqes(m);
  um_sidecar_taken(m);
  rb_thread_check_ints();
}

// Submits pending SQEs and processes completions. With block, waits in the
// kernel (GVL released) until at least one completion arrives or the thread
// is interrupted; pending Ruby interrupts are then raised in the caller.
void um_reap(struct um *m, bool block) {
  if (!block) {
    if (m->defer_taskrun || io_uring_sq_ready(&m->ring)) {
      m->submitted_seq = m->sqe_seq;
      io_uring_submit_and_get_events(&m->ring);
    }
    um_process_ready_cqes(m);
    return;
  }

  if (io_uring_cq_ready(&m->ring) && !m->defer_taskrun) {
    if (io_uring_sq_ready(&m->ring)) um_submit(m);
    um_process_ready_cqes(m);
    return;
  }

  if (m->sidecar) {
    um_reap_sidecar(m);
    return;
  }

  um_arm_wakeup(m);
  m->submitted_seq = m->sqe_seq;
  struct um_wait_ctx ctx = { .m = m, .ret = -EINTR };
  double t0 = m->profile_mode ? um_monotonic_time() : 0;
  rb_thread_call_without_gvl(um_wait_without_gvl, &ctx, RUBY_UBF_IO, NULL);
  m->metrics.total_waits++;
  if (m->profile_mode) m->metrics.time_total_wait += um_monotonic_time() - t0;

  um_process_ready_cqes(m);
  if (ctx.ret < 0 && ctx.ret != -EINTR && ctx.ret != -ETIME && ctx.ret != -EBUSY && ctx.ret != -EAGAIN) {
    m->ring_broken = true;
    rb_syserr_fail(-ctx.ret, "io_uring_submit_and_wait");
  }

  rb_thread_check_ints();
}
