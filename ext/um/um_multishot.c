// Multishot operations: accept_each, read_each, recv_each. One SQE yields a
// CQE per connection or chunk; the CQEs queue up in the op (um_op.c) and the
// fiber takes them one at a time, calling the block for each. Reads and
// receives take their buffers from the machine's pool.
#include "um.h"
#include "um_buffers.h"
#include <errno.h>

// IORING_OP_READ_MULTISHOT: Linux 6.7, liburing 2.5. The opcode follows the
// kernel's enum io_uring_op (IORING_OP_SENDMSG_ZC is 48 in liburing 2.3).
#ifndef HAVE_IO_URING_PREP_READ_MULTISHOT
static void io_uring_prep_read_multishot(struct io_uring_sqe *sqe, int fd, unsigned nbytes, __u64 offset, int buf_group) {
  io_uring_prep_rw(49, sqe, fd, NULL, nbytes, offset);
  sqe->buf_group = (__u16)buf_group;
  sqe->flags = IOSQE_BUFFER_SELECT;
}
#endif

struct um_multishot {
  struct um *m;
  struct um_op *op;
  int fd;
  int flags;
  unsigned generation; // the pool's growth count when the op was armed
};

static void um_multishot_arm(struct um_multishot *ms) {
  struct um *m = ms->m;
  struct um_op *op = ms->op;
  op->flags &= ~(OP_F_COMPLETED | OP_F_CANCELED);
  ms->generation = um_pool_generation(m);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  switch (op->kind) {
    case OP_ACCEPT_MULTI:
      io_uring_prep_multishot_accept(sqe, ms->fd, NULL, NULL, SOCK_CLOEXEC);
      break;
    case OP_RECV_MULTI:
      io_uring_prep_recv_multishot(sqe, ms->fd, NULL, 0, ms->flags);
      sqe->buf_group = UM_POOL_GROUP_ID;
      sqe->flags |= IOSQE_BUFFER_SELECT;
      break;
    default:
      io_uring_prep_read_multishot(sqe, ms->fd, 0, (__u64)-1, UM_POOL_GROUP_ID);
      break;
  }
}

// Whether the result ends the loop quietly: EOF for reads, a listening
// socket that was shut down or closed for accepts.
static bool um_multishot_done(struct um_op *op, int32_t res) {
  if (op->kind == OP_ACCEPT_MULTI) return res == -EINVAL || res == -ECANCELED || res == -EBADF;
  return res == 0;
}

static const char *um_multishot_name(struct um_op *op) {
  switch (op->kind) {
    case OP_ACCEPT_MULTI: return "accept";
    case OP_RECV_MULTI: return "recv";
    default: return "read";
  }
}

// The pool is exhausted: one read or receive into a String of our own
// (kept alive by um_read/um_recv until the kernel lets go). nil at EOF.
static VALUE um_multishot_read_own(struct um_multishot *ms) {
  VALUE str = rb_str_buf_new(UM_POOL_BUFFER_SIZE);
  VALUE len = ms->op->kind == OP_RECV_MULTI
    ? um_recv(ms->m, ms->fd, str, UM_POOL_BUFFER_SIZE, ms->flags)
    : um_read(ms->m, ms->fd, str, UM_POOL_BUFFER_SIZE, 0, -1);
  return NUM2LONG(len) ? str : Qnil;
}

static VALUE um_multishot_loop(VALUE arg) {
  struct um_multishot *ms = (struct um_multishot *)arg;
  struct um *m = ms->m;
  struct um_op *op = ms->op;
  while (true) {
    if (op->data.results.head == op->data.results.count) {
      op->data.results.head = op->data.results.count = 0;
      if (um_op_wait(m, op) != Qundef) return Qnil;
      continue;
    }

    struct um_result r = op->data.results.items[op->data.results.head++];
    bool more = r.flags & IORING_CQE_F_MORE;
    if (r.res == -ENOBUFS) {
      // The kernel ran short of buffers: grow the pool once per shortage
      // (every multishot op waiting then sees it). At capacity, one plain
      // read into memory of our own takes the data, so none is lost.
      if (!um_pool_grow_after(m, ms->generation)) {
        VALUE str = um_multishot_read_own(ms);
        if (NIL_P(str)) return Qnil;
        rb_yield(str);
      }
    }
    else if (um_multishot_done(op, r.res)) {
      um_pool_recycle(m, r.flags);
      return Qnil;
    }
    else if (r.res < 0)
      rb_syserr_fail(-r.res, um_multishot_name(op));
    else if (op->kind == OP_ACCEPT_MULTI)
      rb_yield(INT2NUM(r.res));
    else {
      VALUE str = rb_str_new(r.ptr, r.res);
      um_pool_recycle(m, r.flags);
      rb_yield(str);
    }
    // The kernel stopped this multishot (no more CQEs will come): re-arm.
    if (!more && !(op->flags & OP_F_IN_KERNEL)) um_multishot_arm(ms);
  }
}

// Releasing the op also gives back what its unconsumed results hold.
static VALUE um_multishot_ensure(VALUE arg) {
  struct um_multishot *ms = (struct um_multishot *)arg;
  um_op_discard(ms->m, ms->op);
  return Qnil;
}

static VALUE um_multishot(struct um *m, enum um_op_kind kind, int fd, int flags) {
  unsigned op_flags = OP_F_MULTISHOT | OP_F_RESULTS | OP_F_HELD;
  if (kind == OP_ACCEPT_MULTI) op_flags |= OP_F_RESULT_FD;
  else um_pool_ensure(m);

  struct um_op *op = um_op_new(m, kind, op_flags);
  op->data.results.items = NULL;
  op->data.results.head = op->data.results.count = op->data.results.cap = 0;
  struct um_multishot ms = { .m = m, .op = op, .fd = fd, .flags = flags };
  um_multishot_arm(&ms);
  return rb_ensure(um_multishot_loop, (VALUE)&ms, um_multishot_ensure, (VALUE)&ms);
}

VALUE um_accept_each(struct um *m, int fd) {
  return um_multishot(m, OP_ACCEPT_MULTI, fd, 0);
}

VALUE um_read_each(struct um *m, int fd) {
  um_require_kernel(607, "read_each (multishot read)");
  return um_multishot(m, OP_READ_MULTI, fd, 0);
}

VALUE um_recv_each(struct um *m, int fd, int flags) {
  return um_multishot(m, OP_RECV_MULTI, fd, flags);
}
