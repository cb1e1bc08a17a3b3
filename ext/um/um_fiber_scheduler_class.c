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
static ID id_regular_file;

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

// Whether the IO's fd is a regular file: stated on the first ask, then
// remembered in the IO (under a name Ruby code cannot see). An IO keeps its
// fd for life (IO#reopen aside, which keeps the number for another file:
// the answer can then be stale for a File reopened on a pipe).
static bool um_io_regular_file_p(VALUE io, int fd) {
  if (!RB_TYPE_P(io, T_FILE)) return um_fd_type(fd) == S_IFREG;
  VALUE known = rb_attr_get(io, id_regular_file);
  if (NIL_P(known)) {
    known = um_fd_type(fd) == S_IFREG ? Qtrue : Qfalse;
    if (!OBJ_FROZEN(io)) rb_ivar_set(io, id_regular_file, known);
  }
  return known == Qtrue;
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
// 0.7 s when the attempts do not suspend). So a busy machine makes
// one-attempt transfers syscalls that complete without a switch
// (um_direct.c); otherwise the ring's batching is faster.

// One attempt that cannot wait, as a syscall: preadv2/pwritev2 with
// RWF_NOWAIT, or for an O_NONBLOCK fd whose file takes no RWF_NOWAIT (a
// tty, for one) a plain read or write. Returns bytes or -errno.
static long um_syscall_attempt(bool read_dir, int fd, char *ptr, size_t len, bool plain) {
  if (!plain) return um_direct_transfer(read_dir ? OP_READ : OP_WRITE, fd, ptr, len, -1, 0);
  ssize_t n = read_dir ? read(fd, ptr, len) : write(fd, ptr, len);
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

static VALUE um_fiber_scheduler_waiting_on(VALUE self, VALUE io, VALUE fiber);
static VALUE um_fiber_scheduler_done_waiting_on(VALUE self, VALUE io, VALUE fiber);

struct um_transfer_loop {
  struct um *m;
  bool regular_file;
  bool tried; // an attempt found the fd not ready: the next goes to the ring
  VALUE io; // noted as waited on (for IO#close) once the loop waits; nil: never
  VALUE fiber;
  bool noted;
  bool read_dir;
  bool once;
  int fd;
  VALUE buffer;
  char *base;
  size_t size;
  size_t length;
  size_t offset;
  int64_t from;
};

static VALUE um_transfer_loop_run(VALUE arg) {
  struct um_transfer_loop *l = (struct um_transfer_loop *)arg;
  size_t total = 0;
  size_t offset = l->offset;
  while (offset < l->size) {
    // A wait can last: IO#close must then find this fiber. One attempt that
    // does not wait needs no note (on Ruby's pipes and sockets, the common
    // case, the hook stays free of it).
    if (!l->once && !l->noted && !NIL_P(l->io)) {
      l->fiber = rb_fiber_current();
      um_fiber_scheduler_waiting_on(Qnil, l->io, l->fiber);
      l->noted = true;
    }
    struct um_transfer t = {
      .kind = l->read_dir ? OP_READ : OP_WRITE, .fd = l->fd, .buffer = l->buffer,
      .len = (ssize_t)(l->size - offset), .buffer_offset = (ssize_t)offset,
      .file_offset = l->from < 0 ? -1 : l->from + (int64_t)total, .once = l->once, .no_raise = true,
      .regular_file = l->regular_file, .tried = l->tried
    };
    VALUE ret = um_transfer(l->m, &t);
    // Woken by something that is not an exception: Ruby retries on EINTR.
    long n = FIXNUM_P(ret) ? FIX2LONG(ret) : -EINTR;
    if (l->once && um_attempt_must_wait(&n, l->read_dir, l->fd, l->base + offset, l->size - offset)) {
      l->once = false;
      l->tried = true;
      continue;
    }
    if (n < 0) return total ? SIZET2NUM(total) : LONG2NUM(n);
    if (n == 0) break;
    total += (size_t)n;
    offset += (size_t)n;
    if (total >= l->length) break;
  }
  return SIZET2NUM(total);
}

static VALUE um_transfer_loop_ensure(VALUE arg) {
  struct um_transfer_loop *l = (struct um_transfer_loop *)arg;
  if (l->noted) um_fiber_scheduler_done_waiting_on(Qnil, l->io, l->fiber);
  return Qnil;
}

/*
 * call-seq: transfer(machine, direction, fd, buffer, length, offset, from, io, note) -> Integer
 *
 * Private: the loop of the io_read/io_write/io_pread/io_pwrite hooks.
 * Transfers between the IO::Buffer (from +offset+) and the fd until at
 * least +length+ bytes moved (0: one attempt, which answers -EAGAIN rather
 * than waiting on an O_NONBLOCK pipe, socket or device), EOF, or the
 * buffer's end; +from+ is the file offset (-1: the current position).
 * While it waits, the fiber is noted as waiting on +io+ when +note+ is
 * true. Small writes to an +io+ on a regular file are done inline.
 * Returns the bytes moved, or -errno when nothing moved.
 */
static VALUE um_fiber_scheduler_transfer(int argc, VALUE *argv, VALUE self) {
  rb_check_arity(argc, 9, 9);
  VALUE machine = argv[0], direction = argv[1], fd_v = argv[2], buffer = argv[3];
  VALUE length_v = argv[4], offset_v = argv[5], from_v = argv[6], io = argv[7], note = argv[8];
  struct um *m = um_get_machine(machine);
  if (direction != sym_read && direction != sym_write)
    rb_raise(rb_eArgError, "direction must be :read or :write");
  int fd = um_arg_fd(fd_v);
  size_t length = NUM2SIZET(length_v);
  size_t offset = NUM2SIZET(offset_v);
  int64_t from = NUM2LL(from_v);
  if (!rb_obj_is_kind_of(buffer, rb_cIOBuffer))
    rb_raise(rb_eTypeError, "buffer must be an IO::Buffer, not %s", rb_obj_classname(buffer));

  // A read needs a writable buffer: IO::Buffer.for(frozen_string) is
  // read-only, and Ruby hands it to the hook without checking. Both calls
  // raise as IO::Buffer#read/#write do without a scheduler (AccessError,
  // InvalidatedError) before any byte moves, on the syscall path as on the
  // ring's.
  void *base;
  size_t size;
  bool read_dir = direction == sym_read;
  if (read_dir) rb_io_buffer_get_bytes_for_writing(buffer, &base, &size);
  else rb_io_buffer_get_bytes_for_reading(buffer, (const void **)&base, &size);
  if (offset > size) rb_raise(rb_eArgError, "offset %zu is beyond the buffer's %zu bytes", offset, size);
  if (from >= 0 && um_unseekable(fd)) return INT2NUM(-ESPIPE);
  // Small writes to regular files are done inline (um_direct.c).
  bool regular_file = !read_dir && um_io_regular_file_p(io, fd);

  // Length 0 asks for one attempt. It does not wait: Ruby answers EAGAIN
  // itself, with #io_wait and another attempt (readpartial, write) or an
  // IO::WaitReadable (read_nonblock). With many ops in use the attempt is a
  // syscall (see UM_DIRECT_OPS); otherwise a ring op that does not wait.
  bool once = length == 0, tried = false;
  if (once && from < 0 && !regular_file && um_direct_wanted(m)) {
    long n = um_syscall_attempt(read_dir, fd, (char *)base + offset, size - offset, false);
    if (!um_attempt_must_wait(&n, read_dir, fd, (char *)base + offset, size - offset)) {
      if (n != -EAGAIN) m->direct_streak++;
      return LONG2NUM(n);
    }
    once = false;
    tried = true;
  }

  struct um_transfer_loop l = {
    .m = m, .io = RTEST(note) ? io : Qnil, .regular_file = regular_file, .tried = tried, .fiber = Qnil, .noted = false, .read_dir = read_dir, .once = once, .fd = fd,
    .buffer = buffer, .base = base, .size = size, .length = length, .offset = offset, .from = from
  };
  VALUE ret = rb_ensure(um_transfer_loop_run, (VALUE)&l, um_transfer_loop_ensure, (VALUE)&l);
  RB_GC_GUARD(io);
  RB_GC_GUARD(buffer);
  RB_GC_GUARD(l.fiber);
  return ret;
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

/*
 * call-seq: reserved_fd?(fd) -> true or false
 *
 * Private: whether the fd is one the VM cannot lose: stdin, stdout, stderr,
 * or one Ruby keeps for itself (its timer thread's pipes or eventfd), which
 * no IO may wrap and whose close aborts the VM.
 */
static VALUE um_fiber_scheduler_reserved_fd_p(VALUE self, VALUE fd) {
  int n = um_arg_fd(fd);
  return n >= 0 && (n <= 2 || rb_reserved_fd_p(n)) ? Qtrue : Qfalse;
}

// The IOs fibers wait on in the scheduler's I/O hooks, for IO#close (Ruby
// 3.4 does not tell a scheduler that an IO its fibers wait on is closing):
// IO => the one waiting fiber, or an identity Hash of fiber => true when
// several wait. Kept in C: each change is then one step that no thread
// switch can split (unblock and close may come from other threads).
static VALUE um_io_waiters;
static ID id_compare_by_identity;

static VALUE um_ident_hash(void) {
  return rb_funcall(rb_hash_new(), id_compare_by_identity, 0);
}

/*
 * call-seq: waiting_on(io, fiber) -> nil
 *
 * Private: notes that +fiber+ waits on +io+ in an I/O hook.
 */
static VALUE um_fiber_scheduler_waiting_on(VALUE self, VALUE io, VALUE fiber) {
  VALUE entry = rb_hash_lookup2(um_io_waiters, io, Qundef);
  if (entry == Qundef || entry == fiber)
    rb_hash_aset(um_io_waiters, io, fiber);
  else if (RB_TYPE_P(entry, T_HASH))
    rb_hash_aset(entry, fiber, Qtrue);
  else {
    VALUE set = um_ident_hash();
    rb_hash_aset(set, entry, Qtrue);
    rb_hash_aset(set, fiber, Qtrue);
    rb_hash_aset(um_io_waiters, io, set);
  }
  return Qnil;
}

/*
 * call-seq: done_waiting_on(io, fiber) -> nil
 *
 * Private: +fiber+ left the I/O hook that waited on +io+.
 */
static VALUE um_fiber_scheduler_done_waiting_on(VALUE self, VALUE io, VALUE fiber) {
  VALUE entry = rb_hash_lookup2(um_io_waiters, io, Qundef);
  if (entry == fiber)
    rb_hash_delete(um_io_waiters, io);
  else if (entry != Qundef && RB_TYPE_P(entry, T_HASH)) {
    rb_hash_delete(entry, fiber);
    if (RHASH_SIZE(entry) == 0) rb_hash_delete(um_io_waiters, io);
  }
  return Qnil;
}

/*
 * call-seq: waiters_on(io) -> Array of fibers
 *
 * Private: the fibers waiting on +io+ in an I/O hook now.
 */
static VALUE um_fiber_scheduler_waiters_on(VALUE self, VALUE io) {
  VALUE entry = rb_hash_lookup2(um_io_waiters, io, Qundef);
  if (entry == Qundef) return rb_ary_new();
  if (RB_TYPE_P(entry, T_HASH)) return rb_funcall(entry, rb_intern("keys"), 0);
  return rb_ary_new_from_args(1, entry);
}

/*
 * call-seq: forget_waiters -> nil
 *
 * Private: after fork, the parent's fibers do not wait in the child.
 */
static VALUE um_fiber_scheduler_forget_waiters(VALUE self) {
  rb_hash_clear(um_io_waiters);
  return Qnil;
}

// Two hidden ivars of a fiber (they go away with it): blocked (in #block,
// or waiting for blocking work), and a token left by an #unblock that came
// while the fiber was not blocked, which its next #block takes. Each
// check-and-change is one step that no thread switch can split.
static ID id_blocked, id_token;

/*
 * call-seq: enter_block(fiber) -> true or false
 *
 * Private: true when an #unblock came first (its token is taken and #block
 * returns at once); otherwise marks the fiber blocked and returns false.
 */
static VALUE um_fiber_scheduler_enter_block(VALUE self, VALUE fiber) {
  if (RTEST(rb_attr_get(fiber, id_token))) {
    rb_ivar_set(fiber, id_token, Qfalse);
    return Qtrue;
  }
  rb_ivar_set(fiber, id_blocked, Qtrue);
  return Qfalse;
}

/*
 * call-seq: mark_blocked(fiber) -> nil
 *
 * Private: marks the fiber blocked, leaving a token for a later #block.
 */
static VALUE um_fiber_scheduler_mark_blocked(VALUE self, VALUE fiber) {
  rb_ivar_set(fiber, id_blocked, Qtrue);
  return Qnil;
}

/*
 * call-seq: claim_blocked(fiber) -> true or false
 *
 * Private: true when the fiber was blocked, which it is no longer (whoever
 * claimed it wakes it); false when it was not.
 */
static VALUE um_fiber_scheduler_claim_blocked(VALUE self, VALUE fiber) {
  if (!RTEST(rb_attr_get(fiber, id_blocked))) return Qfalse;
  rb_ivar_set(fiber, id_blocked, Qfalse);
  return Qtrue;
}

/*
 * call-seq: claim_or_token(fiber) -> true or false
 *
 * Private: #unblock's step: as #claim_blocked, but a fiber not blocked is
 * left a token that its next #block takes.
 */
static VALUE um_fiber_scheduler_claim_or_token(VALUE self, VALUE fiber) {
  if (um_fiber_scheduler_claim_blocked(self, fiber) == Qtrue) return Qtrue;
  rb_ivar_set(fiber, id_token, Qtrue);
  return Qfalse;
}

/*
 * call-seq: raise_now(machine, fiber, args) -> value
 *
 * Private: Fiber#raise for a fiber waiting on the machine. The fiber runs at
 * once with the exception made of +args+ (as Kernel#raise makes it); the
 * caller is put next on the runqueue, so it runs again when that fiber next
 * waits (a plain Fiber#raise transfers to the fiber and leaves the caller
 * off the runqueue, never resumed).
 */
static VALUE um_fiber_scheduler_raise_now(VALUE self, VALUE machine, VALUE fiber, VALUE args) {
  struct um *m = um_get_machine(machine);
  Check_Type(args, T_ARRAY);
  VALUE exception = rb_make_exception((int)RARRAY_LEN(args), RARRAY_CONST_PTR(args));
  if (NIL_P(exception)) exception = rb_exc_new_cstr(rb_eRuntimeError, "unhandled exception");

  struct um_op *caller = um_op_new(m, OP_SCHEDULE, OP_F_TRANSIENT);
  RB_OBJ_WRITE(m->self, &caller->fiber, rb_fiber_current());
  um_runqueue_unshift(m, caller);
  struct um_op *target = um_op_new(m, OP_SCHEDULE, OP_F_TRANSIENT);
  RB_OBJ_WRITE(m->self, &target->fiber, fiber);
  RB_OBJ_WRITE(m->self, &target->value, exception);
  um_runqueue_unshift(m, target);
  VALUE ret = um_switch(m);
  RB_GC_GUARD(exception);
  return um_raise_if_exception(ret);
}

void Init_um_fiber_scheduler_class(void) {
  id_regular_file = rb_intern("__um_regular_file");
  sym_read = ID2SYM(rb_intern("read"));
  sym_write = ID2SYM(rb_intern("write"));
  id_blocked = rb_intern("__um_blocked"); // no @: invisible to Ruby code
  id_token = rb_intern("__um_unblock_token");
  id_compare_by_identity = rb_intern("compare_by_identity");
  rb_gc_register_address(&um_io_waiters);
  um_io_waiters = um_ident_hash();
  VALUE cUM = rb_const_get(rb_cObject, rb_intern("UringMachine"));
  VALUE cScheduler = rb_define_class_under(cUM, "FiberScheduler", rb_cObject);
  rb_define_private_method(cScheduler, "transfer", um_fiber_scheduler_transfer, -1);
  rb_define_private_method(cScheduler, "read_buffered?", um_fiber_scheduler_read_buffered_p, 1);
  rb_define_private_method(cScheduler, "machine_thread?", um_fiber_scheduler_machine_thread_p, 1);
  rb_define_private_method(cScheduler, "reserved_fd?", um_fiber_scheduler_reserved_fd_p, 1);
  rb_define_private_method(cScheduler, "enter_block", um_fiber_scheduler_enter_block, 1);
  rb_define_private_method(cScheduler, "mark_blocked", um_fiber_scheduler_mark_blocked, 1);
  rb_define_private_method(cScheduler, "claim_blocked", um_fiber_scheduler_claim_blocked, 1);
  rb_define_private_method(cScheduler, "claim_or_token", um_fiber_scheduler_claim_or_token, 1);
  rb_define_private_method(cScheduler, "raise_now", um_fiber_scheduler_raise_now, 3);

  VALUE sc = rb_singleton_class(cScheduler);
  rb_define_private_method(sc, "machine_thread?", um_fiber_scheduler_machine_thread_p, 1);
  rb_define_private_method(sc, "waiting_on", um_fiber_scheduler_waiting_on, 2);
  rb_define_private_method(sc, "done_waiting_on", um_fiber_scheduler_done_waiting_on, 2);
  rb_define_private_method(sc, "waiters_on", um_fiber_scheduler_waiters_on, 1);
  rb_define_private_method(sc, "forget_waiters", um_fiber_scheduler_forget_waiters, 0);
}
