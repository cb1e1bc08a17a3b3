// Registered (fixed) buffers: IO::Buffer memory registered with the ring
// once, then used by index in read_fixed / write_fixed, which saves the
// kernel from mapping the user's pages on every operation.
//
// The machine owns the registration: m->registered_buffers is a private,
// frozen Array of the IO::Buffers (marked with the machine), and each of
// them is locked while registered, so Ruby can neither resize nor free its
// memory. m->fixed_ops_pending counts the fibers inside read_fixed /
// write_fixed; while it is not zero the registration can neither be dropped
// nor replaced, since the kernel may be reading or writing that memory.
// Fixed ops are OP_F_CALLER_MEM ops: a fiber woken early leaves them only
// after the kernel let go, so the count is exact.
#include "um.h"
#include <ruby/io/buffer.h>
#include <errno.h>
#include <poll.h>

// Kernel limits (io_uring/rsrc.c): at most this many buffers, each at most
// 1 GiB.
#define UM_MAX_REGISTERED_BUFFERS (1U << 14)
#define UM_MAX_REGISTERED_BUFFER_SIZE (1UL << 30)

static bool um_has_registration(struct um *m) {
  return RB_TYPE_P(m->registered_buffers, T_ARRAY);
}

static void um_check_no_fixed_ops(struct um *m, const char *action) {
  if (m->fixed_ops_pending)
    rb_raise(eUMError, "cannot %s registered buffers while %u fixed-buffer operation%s pending",
      action, m->fixed_ops_pending, m->fixed_ops_pending == 1 ? " is" : "s are");
}

static void um_unlock_buffers(VALUE list, long count) {
  for (long i = 0; i < count; i++) um_io_buffer_unlock(RARRAY_AREF(list, i));
}

// Drops the current registration (if any) and unlocks its buffers.
static void um_drop_registration(struct um *m) {
  if (!um_has_registration(m)) return;

  int ret = io_uring_unregister_buffers(&m->ring);
  // ENXIO: the kernel has nothing registered; the buffers are ours anyway.
  if (ret < 0 && ret != -ENXIO) rb_syserr_fail(-ret, "io_uring_unregister_buffers");

  VALUE list = m->registered_buffers;
  RB_OBJ_WRITE(m->self, &m->registered_buffers, Qnil);
  um_unlock_buffers(list, RARRAY_LEN(list));
  RB_GC_GUARD(list);
}

VALUE um_unregister_buffers(struct um *m) {
  um_check_no_fixed_ops(m, "unregister");
  um_drop_registration(m);
  return Qnil;
}

static void um_raise_register_error(int err) {
  if (err == ENOMEM)
    rb_raise(rb_eNoMemError,
      "io_uring_register_buffers: not enough locked memory for the buffers (ENOMEM); "
      "registered buffers count against RLIMIT_MEMLOCK (ulimit -l)");
  rb_syserr_fail(err, "io_uring_register_buffers");
}

// buffers: an Array of IO::Buffer (its element types are checked here).
VALUE um_register_buffers(struct um *m, VALUE buffers) {
  um_check_no_fixed_ops(m, "replace");

  // A private copy: the caller may change their Array afterwards.
  VALUE list = rb_ary_dup(buffers);
  long count = RARRAY_LEN(list);
  if ((unsigned long)count > UM_MAX_REGISTERED_BUFFERS)
    rb_raise(rb_eArgError, "too many buffers to register (%ld, at most %u)", count, UM_MAX_REGISTERED_BUFFERS);

  // Keyed by identity: IO::Buffer#hash / #eql? compare contents.
  VALUE seen = Qnil;
  if (count > 1) seen = rb_funcall(rb_hash_new(), rb_intern("compare_by_identity"), 0);
  for (long i = 0; i < count; i++) {
    VALUE b = RARRAY_AREF(list, i);
    if (!rb_obj_is_kind_of(b, rb_cIOBuffer))
      rb_raise(rb_eTypeError, "buffers[%ld] must be an IO::Buffer, not %s", i, rb_obj_classname(b));
    const void *base;
    size_t size;
    rb_io_buffer_get_bytes_for_reading(b, &base, &size);
    if (!base || !size)
      rb_raise(rb_eArgError, "buffers[%ld] is empty (a registered IO::Buffer needs memory)", i);
    if (size > UM_MAX_REGISTERED_BUFFER_SIZE)
      rb_raise(rb_eArgError, "buffers[%ld] is too large to register (%zu bytes, at most 1 GiB)", i, size);
    if (!NIL_P(seen)) {
      if (RTEST(rb_hash_lookup2(seen, b, Qfalse)))
        rb_raise(rb_eArgError, "buffers[%ld] appears more than once in the list", i);
      rb_hash_aset(seen, b, Qtrue);
    }
  }

  // The old registration goes first: the same buffer may be registered again.
  um_drop_registration(m);
  if (count == 0) return INT2FIX(0);

  for (long i = 0; i < count; i++) {
    int state = 0;
    rb_protect(um_io_buffer_lock, RARRAY_AREF(list, i), &state);
    if (state) {
      um_unlock_buffers(list, i);
      rb_jump_tag(state);
    }
  }

  // Locked now: their memory stays where it is until unregistered.
  VALUE holder = 0;
  struct iovec *iovecs = ALLOCV_N(struct iovec, holder, count);
  for (long i = 0; i < count; i++) {
    const void *base;
    size_t size;
    rb_io_buffer_get_bytes_for_reading(RARRAY_AREF(list, i), &base, &size);
    iovecs[i].iov_base = (void *)base;
    iovecs[i].iov_len = size;
  }
  int ret = io_uring_register_buffers(&m->ring, iovecs, (unsigned)count);
  ALLOCV_END(holder);
  if (ret < 0) {
    um_unlock_buffers(list, count);
    um_raise_register_error(-ret);
  }

  rb_obj_freeze(list);
  RB_OBJ_WRITE(m->self, &m->registered_buffers, list);
  RB_GC_GUARD(seen);
  return LONG2NUM(count);
}

// A fixed op: where in which registered buffer.
struct um_fixed_args {
  struct um *m;
  bool write;
  int fd;
  unsigned index;
  ssize_t len;          // -1: up to the end of the buffer
  size_t buffer_offset;
  int64_t file_offset;
};

// The memory of registered buffer #index for [offset, offset + *len).
static void *um_fixed_memory(struct um_fixed_args *a, size_t *len) {
  struct um *m = a->m;
  if (!um_has_registration(m))
    rb_raise(eUMError, "no buffers are registered (use #register_buffers first)");
  long count = RARRAY_LEN(m->registered_buffers);
  if (a->index >= (unsigned long)count)
    rb_raise(rb_eArgError, "buffer index %u is out of range (%ld buffer%s registered)",
      a->index, count, count == 1 ? "" : "s");

  VALUE buffer = RARRAY_AREF(m->registered_buffers, a->index);
  void *base;
  size_t size;
  if (a->write)
    rb_io_buffer_get_bytes_for_reading(buffer, (const void **)&base, &size);
  else
    // Raises for a read-only IO::Buffer (one made from a frozen String, say).
    rb_io_buffer_get_bytes_for_writing(buffer, &base, &size);

  if (a->buffer_offset > size)
    rb_raise(rb_eArgError, "buffer offset %zu is beyond the end of registered buffer %u (%zu bytes)",
      a->buffer_offset, a->index, size);
  size_t avail = size - a->buffer_offset;
  if (a->len < 0)
    *len = avail;
  else if ((size_t)a->len > avail)
    rb_raise(rb_eArgError, "cannot %s %zd bytes at offset %zu of registered buffer %u (%zu bytes)",
      a->write ? "write" : "read", a->len, a->buffer_offset, a->index, size);
  else
    *len = (size_t)a->len;
  return (char *)base + a->buffer_offset;
}

static VALUE um_fixed_loop(VALUE arg) {
  struct um_fixed_args *a = (struct um_fixed_args *)arg;
  struct um *m = a->m;
  while (true) {
    size_t len;
    void *ptr = um_fixed_memory(a, &len);
    VALUE buffer = RARRAY_AREF(m->registered_buffers, a->index);

    struct um_op *op = um_op_new(m, a->write ? OP_WRITE : OP_READ, OP_F_CALLER_MEM);
    um_op_set_buffer(m, op, buffer);
    struct io_uring_sqe *sqe = um_get_sqe(m, op);
    if (a->write)
      io_uring_prep_write_fixed(sqe, a->fd, ptr, (unsigned)len, (uint64_t)a->file_offset, (int)a->index);
    else
      io_uring_prep_read_fixed(sqe, a->fd, ptr, (unsigned)len, (uint64_t)a->file_offset, (int)a->index);

    int32_t res;
    VALUE v = um_op_await(m, op, &res);
    if (v != Qundef) return v;
    // An O_NONBLOCK fd answers EAGAIN instead of waiting: wait until it is
    // ready, then try again (as #read and #write do).
    if (res == -EAGAIN) {
      v = um_poll(m, a->fd, a->write ? POLLOUT : POLLIN);
      if (!FIXNUM_P(v)) return v;
      continue;
    }
    um_raise_on_error(res, a->write ? "write_fixed" : "read_fixed");
    return INT2NUM(res);
  }
}

static VALUE um_fixed_done(VALUE arg) {
  struct um *m = ((struct um_fixed_args *)arg)->m;
  // A broken ring may not have let go of the op: keep the buffers pinned.
  if (!m->ring_broken) m->fixed_ops_pending--;
  return Qnil;
}

static VALUE um_fixed_op(struct um_fixed_args *a) {
  // Checked before counting, so a misuse leaves no trace.
  size_t len;
  um_fixed_memory(a, &len);
  a->m->fixed_ops_pending++;
  return rb_ensure(um_fixed_loop, (VALUE)a, um_fixed_done, (VALUE)a);
}

VALUE um_read_fixed(struct um *m, int fd, unsigned index, ssize_t maxlen, size_t buffer_offset, int64_t file_offset) {
  struct um_fixed_args a = {
    .m = m, .write = false, .fd = fd, .index = index, .len = maxlen,
    .buffer_offset = buffer_offset, .file_offset = file_offset,
  };
  return um_fixed_op(&a);
}

VALUE um_write_fixed(struct um *m, int fd, unsigned index, ssize_t len, size_t buffer_offset, int64_t file_offset) {
  struct um_fixed_args a = {
    .m = m, .write = true, .fd = fd, .index = index, .len = len,
    .buffer_offset = buffer_offset, .file_offset = file_offset,
  };
  return um_fixed_op(&a);
}
