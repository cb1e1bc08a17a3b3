// Files and generic fd operations.
#include "um.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static VALUE um_path_string(VALUE path) {
  VALUE str = um_buffer_stable(rb_get_path(path));
  StringValueCStr(str);
  return str;
}

// Waits for the op: its result as an Integer, raising on failure; or the
// value the fiber was woken with.
static VALUE um_op_result(struct um *m, struct um_op *op, const char *syscall) {
  int32_t res;
  VALUE v = um_op_await(m, op, &res);
  if (v != Qundef) return v;
  um_raise_on_error(res, syscall);
  return INT2NUM(res);
}

VALUE um_poll(struct um *m, int fd, unsigned mask) {
  struct um_op *op = um_op_new(m, OP_POLL, 0);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  io_uring_prep_poll_add(sqe, fd, mask);
  return um_op_result(m, op, "poll");
}

// io_uring completes reads and writes on O_NONBLOCK fds with EAGAIN instead
// of waiting; those are retried once the fd is ready.
VALUE um_wait_ready(struct um *m, int fd, unsigned events) {
  VALUE v = um_poll(m, fd, events);
  return FIXNUM_P(v) ? Qundef : v;
}

static const char *um_transfer_name(enum um_op_kind kind) {
  switch (kind) {
    case OP_READ: return "read";
    case OP_WRITE: return "write";
    case OP_RECV: return "recv";
    default: return "send";
  }
}

// Prepares a read, write, recv or send; with once, an attempt that does not
// wait (RWF_NOWAIT, MSG_DONTWAIT).
static void um_prep_transfer(struct io_uring_sqe *sqe, enum um_op_kind kind, int fd, void *ptr, size_t count,
    int64_t file_offset, int flags, bool once) {
  switch (kind) {
    case OP_READ:
      io_uring_prep_read(sqe, fd, ptr, (unsigned)count, (uint64_t)file_offset);
      if (once) sqe->rw_flags = RWF_NOWAIT;
      break;
    case OP_WRITE:
      io_uring_prep_write(sqe, fd, ptr, (unsigned)count, (uint64_t)file_offset);
      if (once) sqe->rw_flags = RWF_NOWAIT;
      break;
    case OP_RECV:
      io_uring_prep_recv(sqe, fd, ptr, count, flags | (once ? MSG_DONTWAIT : 0));
      break;
    default: // MSG_NOSIGNAL always: a closed peer gives EPIPE, never SIGPIPE.
      io_uring_prep_send(sqe, fd, ptr, count, flags | (once ? MSG_DONTWAIT : 0) | MSG_NOSIGNAL);
      break;
  }
}

// The direct attempt of a transfer (um_direct.c): true with *res set when
// it is the answer, false when the transfer must go through the ring. A
// short read of a regular file is completed by the ring: *done is what the
// attempt read, the ring reads the rest.
static bool um_transfer_direct(struct um *m, const struct um_transfer *t, void *ptr, size_t count,
    int32_t *res, size_t *done) {
  long n = um_direct_transfer(t->kind, t->fd, ptr, count, t->file_offset, t->flags);
  if (n == -EOPNOTSUPP) return false;
  if (n == -EAGAIN) return t->once || (t->flags & MSG_DONTWAIT) ? (*res = (int32_t)n, true) : false;
  m->direct_streak++;
  if (t->kind == OP_READ && !t->once && um_direct_short_file_read(t->fd, n, count)) {
    *done = (size_t)n;
    return false;
  }
  *res = (int32_t)n;
  return true;
}

// One read, write, recv or send between the buffer and the fd. io_uring
// answers EAGAIN on an O_NONBLOCK fd instead of waiting: the transfer is
// retried once the fd is ready (unless MSG_DONTWAIT asked for EAGAIN). A
// busy machine tries the fd directly first (um_direct.c).
VALUE um_transfer(struct um *m, const struct um_transfer *t) {
  bool reading = t->kind == OP_READ || t->kind == OP_RECV;
  VALUE buffer = reading ? t->buffer : um_buffer_stable(t->buffer);
  bool direct = !t->tried && um_direct_wanted(m);
  while (true) {
    ssize_t offset = t->buffer_offset;
    size_t count;
    void *ptr;
    unsigned flags = OP_F_CALLER_MEM;
    VALUE bounce = Qnil;
    if (reading) {
      count = (size_t)t->len;
      ptr = um_buffer_for_read(buffer, &count, &offset);
    }
    else {
      size_t size;
      ptr = (void *)um_buffer_for_write(buffer, &size);
      if (offset < 0 || (size_t)offset > size)
        rb_raise(rb_eArgError, "buffer offset %zd is out of range for a buffer of %zu bytes", offset, size);
      ptr = (char *)ptr + offset;
      size -= (size_t)offset;
      if (t->len >= 0 && (size_t)t->len > size)
        rb_raise(rb_eArgError, "length %zd exceeds the buffer size (%zu bytes)", t->len, size);
      count = t->len < 0 ? size : (size_t)t->len;
    }

    int32_t res;
    size_t done = 0;
    if (t->kind == OP_WRITE && count <= UM_INLINE_WRITE_MAX && (t->regular_file || um_fd_regular_p(m, t->fd))) {
      long n = um_inline_write(t->fd, ptr, count, t->file_offset, !t->regular_file);
      if (n != -EAGAIN || t->once) {
        res = (int32_t)n;
        goto done;
      }
    }
    if (!(direct && um_transfer_direct(m, t, ptr, count, &res, &done))) {
      direct = false; // once it must wait, the transfer stays on the ring
      // Memory that cannot be pinned (an IO::Buffer slice or external
      // buffer) is read into a String of the op's own, copied in after.
      if (reading && um_buffer_needs_bounce(buffer)) {
        bounce = rb_str_buf_new((long)(count - done));
        ptr = RSTRING_PTR(bounce);
      }
      else {
        if (reading && um_buffer_lock(buffer)) flags |= OP_F_LOCKED;
        ptr = (char *)ptr + done;
      }

      struct um_op *op = um_op_new(m, t->kind, flags);
      um_op_set_buffer(m, op, buffer);
      if (!NIL_P(bounce)) RB_OBJ_WRITE(m->self, &op->extra, bounce);
      struct io_uring_sqe *sqe = um_get_sqe(m, op);
      int64_t file_offset = t->file_offset < 0 ? -1 : t->file_offset + (int64_t)done;
      um_prep_transfer(sqe, t->kind, t->fd, ptr, count - done, file_offset, t->flags, t->once);

      VALUE v = um_op_await(m, op, &res);
      if (v != Qundef) return v;
      if (res == -EAGAIN && !done && !(t->flags & MSG_DONTWAIT) && !t->once) {
        v = um_wait_ready(m, t->fd, reading ? POLLIN : POLLOUT);
        if (v != Qundef) return v;
        continue;
      }
      if (done) {
        // The bytes of the direct attempt are read whatever the rest gave.
        if (!NIL_P(bounce) && res > 0) um_buffer_bounce_in(buffer, offset + (ssize_t)done, bounce, res);
        res = (int32_t)done + (res > 0 ? res : 0);
        bounce = Qnil;
      }
    }
  done:
    if (res < 0 && t->no_raise) return INT2NUM(res);
    um_raise_on_error(res, um_transfer_name(t->kind));
    if (!NIL_P(bounce)) um_buffer_bounce_in(buffer, offset, bounce, res);
    if (reading) um_buffer_after_read(buffer, offset, res);
    RB_GC_GUARD(bounce);
    return INT2NUM(res);
  }
}

// One recv or send between memory the caller keeps until this returns and
// a socket, retried on EAGAIN (with once, one attempt that does not wait:
// EAGAIN is returned). Returns Qundef with *res set (bytes or -errno), or
// the value the fiber was woken with; raises an exception it was woken
// with. The op waits for its cancellation, so the memory is never touched
// after the return.
VALUE um_transfer_raw(struct um *m, enum um_op_kind kind, int fd, void *ptr, size_t count, bool once, int32_t *res) {
  while (true) {
    struct um_op *op = um_op_new(m, kind, OP_F_CALLER_MEM);
    um_prep_transfer(um_get_sqe(m, op), kind, fd, ptr, count, -1, 0, once);

    VALUE v = um_op_await(m, op, res);
    if (v != Qundef || *res != -EAGAIN || once) return v;
    v = um_wait_ready(m, fd, kind == OP_RECV || kind == OP_READ ? POLLIN : POLLOUT);
    if (v != Qundef) return v;
  }
}

VALUE um_read(struct um *m, int fd, VALUE buffer, ssize_t maxlen, ssize_t buffer_offset, int64_t file_offset) {
  struct um_transfer t = { .kind = OP_READ, .fd = fd, .buffer = buffer, .len = maxlen,
    .buffer_offset = buffer_offset, .file_offset = file_offset };
  return um_transfer(m, &t);
}

VALUE um_write(struct um *m, int fd, VALUE buffer, ssize_t len, int64_t file_offset) {
  struct um_transfer t = { .kind = OP_WRITE, .fd = fd, .buffer = buffer, .len = len, .file_offset = file_offset };
  return um_transfer(m, &t);
}

// Writes every byte of every buffer, looping over partial writes: WRITEV
// on a file or pipe, SENDMSG (MSG_NOSIGNAL) on a socket. The iovecs are
// malloc'd and owned by the record while the kernel may read them (freed
// with it if the op is abandoned).
VALUE um_write_all(struct um *m, int fd, int argc, VALUE *argv, int64_t file_offset, bool socket) {
  VALUE buffers;
  size_t left;
  struct iovec *iovecs = um_iovecs_new(argc, argv, &buffers, &left);

  struct iovec *first = iovecs;
  int count = argc;
  size_t written = 0;
  while (left > 0) {
    um_iovecs_advance(&first, &count, 0); // skips empty buffers
    struct um_op *op = um_op_new(m, socket ? OP_SENDV : OP_WRITEV, OP_F_CALLER_MEM);
    op->data.iovecs = iovecs;
    iovecs = NULL;
    RB_OBJ_WRITE(m->self, &op->extra, buffers);
    struct io_uring_sqe *sqe = um_get_sqe(m, op);
    if (socket) {
      struct msghdr *msg = &op->data.net.msg;
      memset(msg, 0, sizeof(*msg));
      msg->msg_iov = first;
      msg->msg_iovlen = (size_t)count;
      io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
    }
    else
      io_uring_prep_writev(sqe, fd, first, (unsigned)count, (uint64_t)file_offset);

    VALUE v = um_op_run(m, op);
    if (v != Qundef) return v;

    // Take back the iovecs: the kernel is done with them.
    int32_t res = op->res;
    iovecs = op->data.iovecs;
    op->data.iovecs = NULL;
    um_op_release(m, op);
    if (res == -EAGAIN) {
      v = um_wait_ready(m, fd, POLLOUT);
      if (v != Qundef) {
        free(iovecs);
        return v;
      }
      continue;
    }
    if (res < 0) {
      free(iovecs);
      um_raise_on_error(res, socket ? "sendv" : "writev");
    }

    written += (size_t)res;
    left -= (size_t)res;
    if (file_offset >= 0) file_offset += res;
    um_iovecs_advance(&first, &count, (size_t)res);
  }
  free(iovecs);
  RB_GC_GUARD(buffers);
  return SIZET2NUM(written);
}

VALUE um_writev(struct um *m, int fd, int argc, VALUE *argv, int64_t file_offset) {
  return um_write_all(m, fd, argc, argv, file_offset, false);
}

// Fire and forget. IOSQE_CQE_SKIP_SUCCESS leaves a successful write without a
// CQE, so a NOP is linked after it: exactly one CQE comes for the pair (the
// NOP's on success; the write's on failure, which also skips the NOP's), and
// it releases the record that keeps the buffer alive.
VALUE um_write_async(struct um *m, int fd, VALUE buffer, ssize_t len, int64_t file_offset) {
  // Always a copy of an IO::Buffer: even one locked by its owner may be
  // unlocked and freed before the kernel is done.
  VALUE stable = um_buffer_frozen_copy(buffer);
  size_t size;
  const void *ptr = um_buffer_for_write(stable, &size);
  if (len >= 0 && (size_t)len > size)
    rb_raise(rb_eArgError, "length %zd exceeds the buffer size (%zu bytes)", len, size);
  size_t count = len < 0 ? size : (size_t)len;

  // Both SQEs must go in the same submission for the link to hold.
  if (io_uring_sq_space_left(&m->ring) < 2) um_submit(m);

  struct um_op *op = um_op_new(m, OP_WRITE_ASYNC, OP_F_TRANSIENT);
  um_op_set_buffer(m, op, stable);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  io_uring_prep_write(sqe, fd, ptr, (unsigned)count, (uint64_t)file_offset);
  sqe->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;

  sqe = um_get_sqe(m, NULL);
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data(sqe, op);
  return buffer;
}

VALUE um_open(struct um *m, VALUE path, int flags, mode_t mode) {
  VALUE str = um_path_string(path);
  struct um_op *op = um_op_new(m, OP_OPEN, OP_F_RESULT_FD);
  RB_OBJ_WRITE(m->self, &op->extra, str);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  io_uring_prep_openat(sqe, AT_FDCWD, RSTRING_PTR(str), flags, mode);
  VALUE v = um_op_result(m, op, "open");
  if (FIXNUM_P(v)) um_fd_learn(m, FIX2INT(v));
  return v;
}

// Ruby's own fds (the timer thread's pipe or eventfd, rb_reserved_fd_p) and
// the machine's (ring, eventfd): closing one would abort the VM or break the
// machine, so neither close nor close_async touches them.
static void um_check_closable(struct um *m, int fd) {
  if (rb_reserved_fd_p(fd))
    rb_raise(eUMError, "fd %d is reserved by the Ruby VM and cannot be closed", fd);
  if (um_machine_fd_p(m, fd))
    rb_raise(eUMError, "fd %d belongs to the machine itself (its ring or eventfd) and cannot be closed", fd);
}

VALUE um_close(struct um *m, int fd) {
  um_check_closable(m, fd);
  um_fd_forget(m, fd);
  struct um_op *op = um_op_new(m, OP_CLOSE, 0);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  io_uring_prep_close(sqe, fd);
  VALUE v = um_op_result(m, op, "close");
  return FIXNUM_P(v) ? INT2NUM(fd) : v;
}

// No record: nothing to keep alive, and only a failure posts a CQE (counted
// in metrics as an async error).
VALUE um_close_async(struct um *m, int fd) {
  um_check_closable(m, fd);
  um_fd_forget(m, fd);
  struct io_uring_sqe *sqe = um_get_sqe(m, NULL);
  io_uring_prep_close(sqe, fd);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  m->metrics.total_ops++;
  return INT2NUM(fd);
}

VALUE um_fsync(struct um *m, int fd) {
  struct um_op *op = um_op_new(m, OP_FSYNC, 0);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  io_uring_prep_fsync(sqe, fd, 0);
  return um_op_result(m, op, "fsync");
}

static VALUE um_statx_time(struct statx_timestamp *t) {
  return DBL2NUM(t->tv_sec + t->tv_nsec / 1e9);
}

static VALUE um_statx_hash(struct statx *s) {
  VALUE h = rb_hash_new();
#define SET(name, value) rb_hash_aset(h, ID2SYM(rb_intern(name)), value)
  SET("mask", UINT2NUM(s->stx_mask));
  SET("dev", ULL2NUM(makedev(s->stx_dev_major, s->stx_dev_minor)));
  SET("rdev", ULL2NUM(makedev(s->stx_rdev_major, s->stx_rdev_minor)));
  SET("ino", ULL2NUM(s->stx_ino));
  SET("mode", UINT2NUM(s->stx_mode));
  SET("nlink", UINT2NUM(s->stx_nlink));
  SET("uid", UINT2NUM(s->stx_uid));
  SET("gid", UINT2NUM(s->stx_gid));
  SET("size", ULL2NUM(s->stx_size));
  SET("blksize", UINT2NUM(s->stx_blksize));
  SET("blocks", ULL2NUM(s->stx_blocks));
  SET("atime", um_statx_time(&s->stx_atime));
  SET("mtime", um_statx_time(&s->stx_mtime));
  SET("ctime", um_statx_time(&s->stx_ctime));
  SET("btime", um_statx_time(&s->stx_btime));
#undef SET
  return h;
}

// The statx buffer is part of the record, which outlives the kernel's use.
VALUE um_statx(struct um *m, int dirfd, VALUE path, int flags, unsigned mask) {
  VALUE str = NIL_P(path) ? rb_str_new_frozen(rb_str_new_cstr("")) : um_path_string(path);
  struct um_op *op = um_op_new(m, OP_STATX, 0);
  RB_OBJ_WRITE(m->self, &op->extra, str);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  io_uring_prep_statx(sqe, dirfd, RSTRING_PTR(str), flags, mask, &op->data.stx);

  VALUE v = um_op_run(m, op);
  if (v != Qundef) return v;
  int32_t res = op->res;
  if (res < 0) {
    um_op_release(m, op);
    um_raise_on_error(res, "statx");
  }
  VALUE h = um_statx_hash(&op->data.stx);
  um_op_release(m, op);
  return h;
}

// Waits through the ring until fd_in has data and fd_out has room (a bad
// fd or an error counts as ready: the splice then reports it).
static VALUE um_splice_wait(struct um *m, int fd_in, int fd_out) {
  while (true) {
    struct pollfd fds[2] = { { .fd = fd_in, .events = POLLIN }, { .fd = fd_out, .events = POLLOUT } };
    if (poll(fds, 2, 0) < 0) return Qundef; // EINTR or the like: the splice tells
    for (int i = 0; i < 2; i++) {
      if (fds[i].revents) continue;
      VALUE v = um_wait_ready(m, fds[i].fd, fds[i].events);
      if (v != Qundef) return v;
    }
    if (fds[0].revents && fds[1].revents) return Qundef;
  }
}

// A splice or tee holds the pipe's mutex for as long as it runs. Run in
// an io-wq worker on a blocking fd it could wait there indefinitely (for a
// socket's data, or its send buffer), and any write or read of that pipe
// from the machine's thread then sleeps uninterruptibly on the mutex inside
// io_uring_enter, where no timeout can reach it. So the fds are first
// waited for through the ring (polls, cancellable like any op), and the
// splice itself never waits (SPLICE_F_NONBLOCK; a non-blocking socket fd
// answers EAGAIN likewise): EAGAIN, from a race with another reader or
// writer, waits again.
static VALUE um_splice_op(struct um *m, enum um_op_kind kind, int fd_in, int fd_out, unsigned nbytes) {
  const char *name = kind == OP_SPLICE ? "splice" : "tee";
  while (true) {
    VALUE v = um_splice_wait(m, fd_in, fd_out);
    if (v != Qundef) return v;

    struct um_op *op = um_op_new(m, kind, 0);
    struct io_uring_sqe *sqe = um_get_sqe(m, op);
    if (kind == OP_SPLICE)
      io_uring_prep_splice(sqe, fd_in, -1, fd_out, -1, nbytes, SPLICE_F_NONBLOCK);
    else
      io_uring_prep_tee(sqe, fd_in, fd_out, nbytes, SPLICE_F_NONBLOCK);
    int32_t res;
    v = um_op_await(m, op, &res);
    if (v != Qundef) return v;
    if (res == -EAGAIN) continue;
    um_raise_on_error(res, name);
    return INT2NUM(res);
  }
}

VALUE um_splice(struct um *m, int fd_in, int fd_out, unsigned nbytes) {
  return um_splice_op(m, OP_SPLICE, fd_in, fd_out, nbytes);
}

VALUE um_tee(struct um *m, int fd_in, int fd_out, unsigned nbytes) {
  return um_splice_op(m, OP_TEE, fd_in, fd_out, nbytes);
}
