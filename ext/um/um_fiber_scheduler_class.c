// What UM::FiberScheduler (lib/uringmachine/fiber_scheduler.rb) needs from
// C: the transfer loops of its buffered I/O hooks (without an exception per
// EAGAIN), Ruby's read buffer of an IO, and the machine's thread.
#include "um.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <ruby/io.h>
#include <ruby/io/buffer.h>

static VALUE sym_read, sym_write;

// The fd's file type (S_IFREG, S_IFIFO...), 0 when fstat fails.
static mode_t um_fd_type(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? (st.st_mode & S_IFMT) : 0;
}

// pread and pwrite need a seekable fd; io_uring would ignore the offset of
// a pipe or a socket instead of failing.
static bool um_unseekable(int fd) {
  mode_t type = um_fd_type(fd);
  return type == S_IFIFO || type == S_IFSOCK;
}

// Whether an attempt that found nothing ready (or could not be made without
// waiting) must wait after all: on a blocking fd (Ruby expects no EAGAIN
// there), and on a regular file or a block device, where readiness means
// nothing and Ruby's #io_wait and retry would spin. Asked only then, so the
// common case costs no syscall.
static bool um_must_wait(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || !(flags & O_NONBLOCK)) return true;
  mode_t type = um_fd_type(fd);
  return type == S_IFREG || type == S_IFBLK;
}

// Ruby calls io_write inside the IO's write lock, and each unlock walks the
// list of mutexes the thread holds: with thousands of fibers suspended in
// their writes, unlocking comes to dominate (10,000 pipes: 8 s, against
// 0.7 s when the attempts do not suspend). So past this many ops in use
// (in the kernel, waiting to be submitted, or on the runqueue), one-attempt
// transfers are syscalls that complete without a switch; below it the
// ring's batching is faster.
#define UM_DIRECT_OPS 256

// How many one-attempt transfers in a row may be done as plain syscalls
// without a fiber switch on the machine (a switch resets the count); the
// next goes through the ring and lets the other fibers run.
#define UM_DIRECT_STREAK_MAX 64

// One attempt that cannot wait, as a syscall: preadv2/pwritev2 with
// RWF_NOWAIT, or for an O_NONBLOCK fd whose file takes no RWF_NOWAIT (a
// tty, for one) a plain read or write. Returns bytes or -errno.
static long um_syscall_attempt(bool read_dir, int fd, char *ptr, size_t len, bool plain) {
  struct iovec iov = { .iov_base = ptr, .iov_len = len };
  ssize_t n = plain ? (read_dir ? read(fd, ptr, len) : write(fd, ptr, len))
    : (read_dir ? preadv2(fd, &iov, 1, -1, RWF_NOWAIT) : pwritev2(fd, &iov, 1, -1, RWF_NOWAIT));
  return n >= 0 ? (long)n : (errno == EWOULDBLOCK ? -EAGAIN : -errno);
}

// After a one-attempt transfer gave *n: whether it must wait on the ring
// after all (nothing was ready, or RWF_NOWAIT was refused, on an fd where
// Ruby cannot take EAGAIN). Otherwise *n is the answer; an O_NONBLOCK fd that
// refused RWF_NOWAIT gets its attempt as a plain read or write.
static bool um_attempt_must_wait(long *n, bool read_dir, int fd, char *ptr, size_t len) {
  if (*n != -EAGAIN && *n != -EOPNOTSUPP) return false;
  if (um_must_wait(fd)) return true;
  if (*n == -EOPNOTSUPP) *n = um_syscall_attempt(read_dir, fd, ptr, len, true);
  return false;
}

/*
 * call-seq: transfer(machine, direction, fd, buffer, length, offset, from) -> Integer
 *
 * Private: the loop of the io_read/io_write/io_pread/io_pwrite hooks.
 * Transfers between the IO::Buffer (from +offset+) and the fd until at
 * least +length+ bytes moved (0: one attempt, which answers -EAGAIN rather
 * than waiting on an O_NONBLOCK pipe, socket or device), EOF, or the
 * buffer's end; +from+ is the file offset (-1: the current position).
 * Returns the bytes moved, or -errno when nothing moved.
 */
static VALUE um_fiber_scheduler_transfer(VALUE self, VALUE machine, VALUE direction, VALUE fd_v,
    VALUE buffer, VALUE length_v, VALUE offset_v, VALUE from_v) {
  struct um *m = um_get_machine(machine);
  if (direction != sym_read && direction != sym_write)
    rb_raise(rb_eArgError, "direction must be :read or :write");
  int fd = um_arg_fd(fd_v);
  size_t length = NUM2SIZET(length_v);
  size_t offset = NUM2SIZET(offset_v);
  int64_t from = NUM2LL(from_v);
  if (!rb_obj_is_kind_of(buffer, rb_cIOBuffer))
    rb_raise(rb_eTypeError, "buffer must be an IO::Buffer, not %s", rb_obj_classname(buffer));
  if (from >= 0 && um_unseekable(fd)) return INT2NUM(-ESPIPE);

  void *base;
  size_t size;
  rb_io_buffer_get_bytes(buffer, &base, &size);
  if (offset > size) rb_raise(rb_eArgError, "offset %zu is beyond the buffer's %zu bytes", offset, size);

  // Length 0 asks for one attempt. It does not wait: Ruby answers EAGAIN
  // itself, with #io_wait and another attempt (readpartial, write) or an
  // IO::WaitReadable (read_nonblock). With many ops in use the attempt is a
  // syscall (see UM_DIRECT_OPS); otherwise a ring op that does not wait.
  bool read_dir = direction == sym_read;
  bool once = length == 0;
  if (once && from < 0 && m->metrics.ops_allocated - m->metrics.ops_free >= UM_DIRECT_OPS &&
      m->direct_streak < UM_DIRECT_STREAK_MAX) {
    long n = um_syscall_attempt(read_dir, fd, (char *)base + offset, size - offset, false);
    if (!um_attempt_must_wait(&n, read_dir, fd, (char *)base + offset, size - offset)) {
      if (n != -EAGAIN) m->direct_streak++;
      return LONG2NUM(n);
    }
    once = false;
  }

  size_t total = 0;
  while (offset < size) {
    struct um_transfer t = {
      .kind = read_dir ? OP_READ : OP_WRITE, .fd = fd, .buffer = buffer,
      .len = (ssize_t)(size - offset), .buffer_offset = (ssize_t)offset,
      .file_offset = from < 0 ? -1 : from + (int64_t)total, .once = once, .no_raise = true
    };
    VALUE ret = um_transfer(m, &t);
    // Woken by something that is not an exception: Ruby retries on EINTR.
    long n = FIXNUM_P(ret) ? FIX2LONG(ret) : -EINTR;
    if (once && um_attempt_must_wait(&n, read_dir, fd, (char *)base + offset, size - offset)) {
      once = false;
      continue;
    }
    if (n < 0) return total ? SIZET2NUM(total) : LONG2NUM(n);
    if (n == 0) break;
    total += (size_t)n;
    offset += (size_t)n;
    if (total >= length) break;
  }
  return SIZET2NUM(total);
}

/*
 * call-seq: read_buffered?(io) -> true or false
 *
 * Private: whether Ruby already holds data read from the IO in its buffer
 * (IO.select must count such an IO as readable without asking the kernel).
 */
static VALUE um_fiber_scheduler_read_buffered_p(VALUE self, VALUE io) {
  io = rb_io_get_io(io);
  rb_io_t *fptr;
  GetOpenFile(io, fptr);
  return rb_io_read_pending(fptr) ? Qtrue : Qfalse;
}

/*
 * call-seq: machine_thread?(machine) -> true or false
 *
 * Private: whether the calling thread owns the machine (Ruby calls some
 * hooks from other threads).
 */
static VALUE um_fiber_scheduler_machine_thread_p(VALUE self, VALUE machine) {
  return um_get_machine_unchecked(machine)->thread == rb_thread_current() ? Qtrue : Qfalse;
}

void Init_um_fiber_scheduler_class(void) {
  sym_read = ID2SYM(rb_intern("read"));
  sym_write = ID2SYM(rb_intern("write"));
  VALUE cUM = rb_const_get(rb_cObject, rb_intern("UringMachine"));
  VALUE cScheduler = rb_define_class_under(cUM, "FiberScheduler", rb_cObject);
  rb_define_private_method(cScheduler, "transfer", um_fiber_scheduler_transfer, 7);
  rb_define_private_method(cScheduler, "read_buffered?", um_fiber_scheduler_read_buffered_p, 1);
  rb_define_private_method(cScheduler, "machine_thread?", um_fiber_scheduler_machine_thread_p, 1);
}
