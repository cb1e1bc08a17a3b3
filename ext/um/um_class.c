// Ruby bindings of the machine: argument checks, TypedData, method table.
#include "um.h"
#include "um_buffers.h"
#include <ruby/io/buffer.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

VALUE cUM;
VALUE eUMError;
VALUE eUMTerminate;
unsigned um_fork_generation;
static VALUE cFiber; // not exported by Ruby's headers

static ID id_new;
static ID id_machine_ivar;
static VALUE sym_size, sym_sqpoll, sym_sidecar;

#define UM_MAX_ENTRIES 32768

static void um_mark(void *ptr) {
  struct um *m = ptr;
  rb_gc_mark_movable(m->thread);
  rb_gc_mark_movable(m->main_fiber);
  rb_gc_mark_movable(m->registered_buffers);
  um_ops_mark(m);
}

static void um_compact(void *ptr) {
  struct um *m = ptr;
  m->self = rb_gc_location(m->self);
  m->thread = rb_gc_location(m->thread);
  m->main_fiber = rb_gc_location(m->main_fiber);
  m->registered_buffers = rb_gc_location(m->registered_buffers);
  um_ops_compact(m);
}

void um_unref(struct um *m) {
  if (--m->refs > 0) return;

  um_ring_teardown(m);
  um_pool_free(m);
  um_ops_free_all(m);
  um_fd_kinds_free(m);
  free(m);
}

static void um_free(void *ptr) {
  um_unref(ptr);
}

static size_t um_memsize(const void *ptr) {
  const struct um *m = ptr;
  return sizeof(struct um) + m->metrics.ops_allocated * sizeof(struct um_op) + m->ring_bytes;
}

static const rb_data_type_t um_type = {
  .wrap_struct_name = "UringMachine",
  .function = { .dmark = um_mark, .dfree = um_free, .dsize = um_memsize, .dcompact = um_compact },
  // dfree touches no Ruby object: freed at once, so a GC run (see the retry
  // in um_ring_setup) gives back the rings of dropped machines right away.
  .flags = RUBY_TYPED_WB_PROTECTED | RUBY_TYPED_FREE_IMMEDIATELY,
};

static VALUE um_allocate(VALUE klass) {
  struct um *m = calloc(1, sizeof(struct um));
  if (!m) rb_raise(rb_eNoMemError, "failed to allocate a machine");
  m->refs = 1;
  m->wakeup_fd = -1;
  m->thread = Qnil;
  m->main_fiber = Qnil;
  m->wakeup_op = &m->wakeup_record;
  m->wakeup_record.kind = OP_WAKEUP;
  VALUE self = TypedData_Wrap_Struct(klass, &um_type, m);
  m->self = self;
  return self;
}

static struct um *um_get_struct(VALUE self) {
  struct um *m;
  TypedData_Get_Struct(self, struct um, &um_type, m);
  return m;
}

static void um_raise_closed(void) {
  rb_raise(eUMError, "machine is closed");
}

static struct um *um_get_raw(VALUE self) {
  struct um *m = um_get_struct(self);
  if (m->closed) um_raise_closed();
  if (!m->ring_initialized) rb_raise(eUMError, "machine is not initialized");
  return m;
}

// The machine without the owner checks (for thread-safe methods).
struct um *um_get_machine_unchecked(VALUE self) {
  return um_get_raw(self);
}

static void um_check_process(struct um *m) {
  if (m->closed) um_raise_closed();
  if (m->fork_generation != um_fork_generation)
    rb_raise(eUMError,
      "this machine belongs to the parent process (it was inherited through fork); "
      "use Thread.current.machine or UM.new in the child");
}

void um_check_owner(struct um *m) {
  um_check_process(m);
  if (m->thread != rb_thread_current())
    rb_raise(eUMError, "this machine belongs to another thread");
}

struct um *um_get_machine(VALUE self) {
  struct um *m = um_get_raw(self);
  um_check_owner(m);
  return m;
}

// Argument checks

// Machine

/*
 * call-seq:
 *   UM.new(size = 4096) -> machine
 *   UM.new(size: 4096, sqpoll: false, sidecar: false) -> machine
 *
 * Creates a machine with a ring of +size+ submission entries. +sqpoll+ true
 * (or an idle time in seconds) turns on kernel-side submission polling.
 * +sidecar+ true starts a native helper thread that waits in the kernel for
 * completions and wakes the machine's thread (not with +sqpoll+).
 * Raises UM::Error when io_uring is not available, saying why. When the
 * process is out of fds or memory, a GC runs (closing the rings of dropped
 * machines) and setup is tried once more.
 *
 * @example
 *   machine = UM.new               # 4096 entries
 *   machine = UM.new(256)
 *   machine = UM.new(size: 1024, sqpoll: true)
 *   machine.size                   # => 1024
 */
static VALUE um_initialize(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_struct(self);
  if (m->ring_initialized || m->closed) rb_raise(eUMError, "machine is already initialized");

  VALUE size_arg = Qnil, opts = Qnil;
  rb_scan_args(argc, argv, "01:", &size_arg, &opts);
  VALUE sqpoll_arg = Qfalse, sidecar_arg = Qfalse;
  if (!NIL_P(opts)) {
    VALUE values[3] = { Qundef, Qundef, Qundef };
    ID keys[3] = { SYM2ID(sym_size), SYM2ID(sym_sqpoll), SYM2ID(sym_sidecar) };
    rb_get_kwargs(opts, keys, 0, 3, values);
    if (values[0] != Qundef) {
      if (!NIL_P(size_arg)) rb_raise(rb_eArgError, "size given both as an argument and as a keyword");
      size_arg = values[0];
    }
    if (values[1] != Qundef) sqpoll_arg = values[1];
    if (values[2] != Qundef) sidecar_arg = values[2];
  }
  if (sidecar_arg != Qtrue && sidecar_arg != Qfalse && !NIL_P(sidecar_arg))
    rb_raise(rb_eTypeError, "sidecar must be true or false, not %s", rb_obj_classname(sidecar_arg));
  bool sidecar = sidecar_arg == Qtrue;

  unsigned size = 4096;
  if (!NIL_P(size_arg)) {
    long n = um_arg_long(size_arg, "size");
    if (n < 1 || n > UM_MAX_ENTRIES)
      rb_raise(rb_eArgError, "size must be between 1 and %d (got %ld)", UM_MAX_ENTRIES, n);
    size = (unsigned)n;
  }

  bool sqpoll = false;
  double idle = 1.0;
  if (sqpoll_arg == Qtrue)
    sqpoll = true;
  else if (RTEST(sqpoll_arg)) {
    if (!rb_obj_is_kind_of(sqpoll_arg, rb_cNumeric))
      rb_raise(rb_eTypeError, "sqpoll must be true, false or an idle time in seconds, not %s", rb_obj_classname(sqpoll_arg));
    idle = um_arg_interval(sqpoll_arg);
    if (idle > 3600) rb_raise(rb_eArgError, "sqpoll idle time must be at most 3600 seconds");
    sqpoll = true;
  }

  RB_OBJ_WRITE(self, &m->thread, rb_thread_current());
  RB_OBJ_WRITE(self, &m->main_fiber, rb_fiber_current());
  m->main_fiber_spun = um_fiber_spun_p(m->main_fiber);
  if (sidecar && sqpoll) rb_raise(rb_eArgError, "sidecar and sqpoll cannot be combined");

  m->fork_generation = um_fork_generation;
  um_ring_setup(m, size, sqpoll, idle, sidecar);
  return self;
}

/*
 * Number of submission queue entries.
 *
 * @example
 *   UM.new(256).size  # => 256
 */
static VALUE um_size_m(VALUE self) {
  return UINT2NUM(um_get_raw(self)->size);
}

/*
 * Whether kernel-side submission polling is on.
 *
 * @example
 *   UM.new(sqpoll: 0.5).sqpoll_mode?  # => true
 *   UM.new.sqpoll_mode?              # => false
 */
static VALUE um_sqpoll_mode_p(VALUE self) {
  return um_get_raw(self)->sqpoll_mode ? Qtrue : Qfalse;
}

/*
 * Whether a sidecar thread waits for the ring's completions.
 *
 * @example
 *   UM.new(sidecar: true).sidecar_mode?  # => true
 */
static VALUE um_sidecar_mode_p(VALUE self) {
  return um_get_raw(self)->sidecar ? Qtrue : Qfalse;
}

/*
 * Whether #close was called.
 *
 * @example
 *   machine = UM.new
 *   machine.close
 *   machine.closed?  # => true
 */
static VALUE um_closed_p(VALUE self) {
  return um_get_struct(self)->closed ? Qtrue : Qfalse;
}

static bool um_runqueue_has_live_fibers(struct um *m) {
  for (struct um_op *op = m->runqueue_head; op; op = op->next)
    if (!NIL_P(op->fiber) && RTEST(rb_fiber_alive_p(op->fiber))) return true;
  return false;
}

// #close with no argument. It refuses, rather than cancels, while fibers
// wait on operations or are scheduled: cancelling would resume them on a
// machine that can no longer run them, and the kernel could still be using
// their buffers.
static VALUE um_close_machine(VALUE self) {
  struct um *m = um_get_struct(self);
  if (m->closed) return Qnil;
  if (!m->ring_initialized) rb_raise(eUMError, "machine is not initialized");
  // An inherited machine holds nothing of ours but copies: always closable.
  if (m->fork_generation == um_fork_generation) {
    um_check_owner(m);
    if (m->metrics.ops_pending)
      rb_raise(eUMError,
        "cannot close the machine: %u operation%s pending (terminate and join the fibers waiting on them first)",
        m->metrics.ops_pending, m->metrics.ops_pending == 1 ? " is" : "s are");
    if (um_runqueue_has_live_fibers(m))
      rb_raise(eUMError, "cannot close the machine: fibers are scheduled to run on it (join them first)");
    um_unregister_buffers(m);
  }
  um_machine_close(m);
  return Qnil;
}

/* The fiber that created the machine (private). */
static VALUE um_main_fiber(VALUE self) {
  return um_get_raw(self)->main_fiber;
}

/*
 * Submits pending SQEs now; returns how many were submitted.
 *
 * @example
 *   machine.write_async(fd, "data")
 *   machine.submit  # => 1, the write is in the kernel now
 */
static VALUE um_submit_m(VALUE self) {
  return INT2NUM(um_submit(um_get_machine(self)));
}

/*
 * call-seq: forked? -> true or false
 *
 * Whether the machine was inherited from the parent process through fork: it
 * cannot be used in this process (its ring belongs to the parent).
 *
 * @example
 *   machine = UM.new
 *   fork { machine.forked? }  # => true in the child
 *   machine.forked?           # => false
 */
static VALUE um_forked_p(VALUE self) {
  return um_get_raw(self)->fork_generation == um_fork_generation ? Qfalse : Qtrue;
}

/*
 * From any thread: makes the machine return from a wait in the kernel.
 *
 * @example
 *   # in another thread: hand a value to a fiber of the machine, then wake it
 *   machine.schedule(fiber, :work)
 *   machine.wakeup  # => nil
 */
static VALUE um_wakeup_m(VALUE self) {
  struct um *m = um_get_raw(self);
  um_check_process(m);
  um_wakeup(m);
  return Qnil;
}

/*
 * A Hash of the machine's counters (see the README for their meaning).
 *
 * @example
 *   machine.metrics[:total_ops]    # => 12
 *   machine.metrics[:ops_pending]  # => 0
 */
static VALUE um_metrics_m(VALUE self) {
  struct um *m = um_get_machine(self);
  VALUE h = rb_hash_new();
#define SET(name, value) rb_hash_aset(h, ID2SYM(rb_intern(name)), value)
  SET("size", UINT2NUM(m->size));
  SET("total_ops", ULL2NUM(m->metrics.total_ops));
  SET("total_switches", ULL2NUM(m->metrics.total_switches));
  SET("total_waits", ULL2NUM(m->metrics.total_waits));
  SET("ops_pending", UINT2NUM(m->metrics.ops_pending));
  SET("ops_unsubmitted", UINT2NUM(io_uring_sq_ready(&m->ring)));
  SET("ops_runqueue", UINT2NUM(m->metrics.ops_runqueue));
  SET("ops_free", UINT2NUM(m->metrics.ops_free));
  SET("ops_transient", UINT2NUM(m->metrics.ops_transient));
  SET("async_errors", ULL2NUM(m->metrics.async_errors));
  if (m->profile_mode) {
    SET("time_total_wait", DBL2NUM(m->metrics.time_total_wait));
  }
  um_pool_metrics(m, h);
#undef SET
  return h;
}

/*
 * Turns per-fiber CPU time accounting on or off.
 *
 * @example
 *   machine.profile_mode = true
 *   f = machine.spin { 100_000.times { } }
 *   machine.join(f)
 *   machine.fiber_cpu_time(f)  # => 0.0021
 */
static VALUE um_profile_mode_set(VALUE self, VALUE on) {
  um_set_profile_mode(um_get_machine(self), RTEST(on));
  return on;
}

/*
 * Whether per-fiber CPU time accounting is on.
 *
 * @example
 *   machine.profile_mode = true
 *   machine.profile_mode?  # => true
 */
static VALUE um_profile_mode_p(VALUE self) {
  return um_get_machine(self)->profile_mode ? Qtrue : Qfalse;
}

/*
 * call-seq: fiber_cpu_time(fiber = Fiber.current) -> Float
 *
 * CPU seconds spent running the fiber while profile mode was on.
 *
 * @example
 *   machine.profile_mode = true
 *   machine.fiber_cpu_time  # => CPU seconds of the current fiber
 */
static VALUE um_fiber_cpu_time_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  VALUE fiber = rb_check_arity(argc, 0, 1) ? argv[0] : rb_fiber_current();
  if (!rb_obj_is_kind_of(fiber, cFiber))
    rb_raise(rb_eTypeError, "expected a Fiber, not %s", rb_obj_classname(fiber));
  return DBL2NUM(um_fiber_cpu_time(m, fiber));
}

// Fibers and time

/*
 * call-seq: schedule(fiber, value) -> self
 *
 * Puts the fiber on the runqueue; it resumes with +value+, or raises it if
 * it is an exception. May be called from another thread.
 *
 * @example
 *   f = machine.spin { machine.yield }
 *   machine.snooze                 # f now waits in #yield
 *   machine.schedule(f, :wake_up)
 *   machine.join(f)                # => :wake_up
 */
static VALUE um_schedule_m(VALUE self, VALUE fiber, VALUE value) {
  struct um *m = um_get_raw(self);
  um_check_process(m);
  if (!rb_obj_is_kind_of(fiber, cFiber))
    rb_raise(rb_eTypeError, "expected a Fiber, not %s", rb_obj_classname(fiber));
  um_schedule(m, fiber, value);
  if (m->thread != rb_thread_current()) um_wakeup(m);
  return self;
}

/*
 * call-seq: transfer_now(fiber, value) -> value
 *
 * Private: runs the fiber at once with +value+; the calling fiber is put at
 * the front of the runqueue and continues when that fiber suspends.
 */
static VALUE um_transfer_now_m(VALUE self, VALUE fiber, VALUE value) {
  if (!rb_obj_is_kind_of(fiber, cFiber))
    rb_raise(rb_eTypeError, "expected a Fiber, not %s", rb_obj_classname(fiber));
  return um_transfer_now(um_get_machine(self), fiber, value);
}

/*
 * Reschedules the current fiber behind the others and lets them run.
 *
 * @example
 *   machine.spin { puts "other fiber" }
 *   machine.snooze   # prints "other fiber", then returns here
 */
static VALUE um_snooze_m(VALUE self) {
  return um_snooze(um_get_machine(self));
}

/*
 * Suspends the current fiber until something schedules it.
 *
 * @example
 *   f = machine.spin { machine.yield * 2 }
 *   machine.snooze
 *   machine.schedule(f, 21)
 *   machine.join(f)  # => 42
 */
static VALUE um_yield_m(VALUE self) {
  return um_yield(um_get_machine(self));
}

/*
 * Runs the next runqueue entry without rescheduling the current fiber.
 *
 * @example
 *   f = machine.spin { :done }
 *   machine.schedule(Fiber.current, :back)
 *   machine.switch  # => :back, after f ran
 */
static VALUE um_switch_m(VALUE self) {
  return um_switch(um_get_machine(self));
}

/*
 * call-seq: sleep(seconds = nil) -> Float
 *
 * Suspends the current fiber; returns the seconds slept. nil sleeps until
 * the fiber is scheduled; 0 lets the other fibers run once.
 *
 * @example
 *   machine.sleep(0.05)  # => 0.0501
 *   machine.sleep(0)     # lets the other fibers run once
 */
static VALUE um_sleep_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  VALUE arg = rb_check_arity(argc, 0, 1) ? argv[0] : Qnil;
  bool forever = NIL_P(arg);
  double seconds = forever ? 0 : um_arg_interval(arg);
  return DBL2NUM(um_sleep(m, seconds, forever));
}

static VALUE um_exception_arg(VALUE exc) {
  if (RB_TYPE_P(exc, T_CLASS) && RTEST(rb_class_inherited_p(exc, rb_eException)))
    return rb_funcall(exc, id_new, 1, rb_str_new_cstr("execution expired"));
  if (rb_obj_is_kind_of(exc, rb_eException)) return exc;
  rb_raise(rb_eTypeError, "exception class/object expected, not %s", rb_obj_classname(exc));
}

/*
 * call-seq: timeout(seconds, exception_class_or_instance) { } -> block value
 *
 * Raises the exception in the current fiber if the block runs longer than
 * +seconds+; the operation it waits on is cancelled.
 *
 * @example
 *   r, _w = UM.pipe
 *   machine.timeout(0.1, Timeout::Error) { machine.read(r, +"", 10) }
 *   # raises Timeout::Error after 0.1 s; the read is cancelled
 */
static VALUE um_timeout_m(VALUE self, VALUE seconds, VALUE exc) {
  struct um *m = um_get_machine(self);
  rb_need_block();
  double interval = um_arg_interval(seconds);
  return um_timeout(m, interval, um_exception_arg(exc));
}

/*
 * Calls the block every +interval+ seconds until it breaks or raises.
 *
 * @example
 *   n = 0
 *   machine.periodically(0.01) { n += 1; break if n == 3 }
 *   n  # => 3
 */
static VALUE um_periodically_m(VALUE self, VALUE interval) {
  struct um *m = um_get_machine(self);
  rb_need_block();
  double seconds = um_arg_interval(interval);
  if (seconds == 0) rb_raise(rb_eArgError, "interval must be greater than 0");
  return um_periodically(m, seconds);
}

// Files and descriptors

// Closes the fd opened by the block form of #open.
static VALUE um_open_close(VALUE arg) {
  VALUE *args = (VALUE *)arg;
  struct um *m = um_get_raw(args[0]);
  return um_close(m, NUM2INT(args[1]));
}

/*
 * call-seq:
 *   open(path, flags, mode = 0666) -> fd
 *   open(path, flags, mode = 0666) { |fd| } -> block value
 *
 * Opens a file. The block form closes the fd when the block returns.
 *
 * @example
 *   fd = machine.open("/etc/hostname", UM::O_RDONLY)
 *   machine.open("/tmp/out.txt", UM::O_CREAT | UM::O_WRONLY, 0644) do |fd|
 *     machine.write(fd, "hello")
 *   end  # => 5, and the fd is closed
 */
static VALUE um_open_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  rb_check_arity(argc, 2, 3);
  int flags = (int)um_arg_long(argv[1], "flags");
  mode_t mode = argc > 2 ? (mode_t)um_arg_long(argv[2], "mode") : 0666;
  VALUE fd = um_open(m, argv[0], flags, mode);
  if (!rb_block_given_p() || !FIXNUM_P(fd)) return fd;

  VALUE args[2] = { self, fd };
  return rb_ensure(rb_yield, fd, um_open_close, (VALUE)args);
}

/*
 * call-seq: read(fd, buffer, maxlen = nil, buffer_offset = 0, file_offset = -1) -> Integer
 *
 * Reads up to +maxlen+ bytes into the buffer at +buffer_offset+ (negative:
 * from the end, -1 appends). Returns the bytes read, 0 at EOF.
 *
 * @example
 *   r, w = UM.pipe
 *   machine.write(w, "hello")
 *   buf = +""
 *   machine.read(r, buf, 4096)  # => 5
 *   buf                         # => "hello"
 */
static VALUE um_read_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  rb_check_arity(argc, 2, 5);
  int fd = um_arg_fd(argv[0]);
  VALUE buffer = argv[1];
  um_arg_buffer(buffer);
  ssize_t buffer_offset = argc > 3 && !NIL_P(argv[3]) ? um_arg_long(argv[3], "buffer offset") : 0;
  int64_t file_offset = argc > 4 ? um_arg_file_offset(argv[4]) : -1;
  ssize_t maxlen = argc > 2 ? um_arg_len(argv[2], "length") : -1;
  if (maxlen < 0) maxlen = um_buffer_default_read_len(buffer, buffer_offset);
  return um_read(m, fd, buffer, maxlen, buffer_offset, file_offset);
}

struct um_write_args {
  int fd;
  ssize_t len;
  int64_t file_offset;
};

// (fd, buffer, len = nil, file_offset = -1), shared by write and write_async
static struct um_write_args um_parse_write_args(int argc, VALUE *argv) {
  rb_check_arity(argc, 2, 4);
  struct um_write_args a;
  a.fd = um_arg_fd(argv[0]);
  um_arg_buffer(argv[1]);
  a.len = argc > 2 ? um_arg_write_len(argv[2], "length") : -1;
  a.file_offset = argc > 3 ? um_arg_file_offset(argv[3]) : -1;
  return a;
}

/*
 * call-seq: write(fd, buffer, len = nil, file_offset = -1) -> Integer
 *
 * Writes up to +len+ bytes (nil or -1: the whole buffer); may be partial.
 *
 * @example
 *   r, w = UM.pipe
 *   machine.write(w, "hello")     # => 5
 *   machine.write(w, "hello", 2)  # => 2 ("he")
 */
static VALUE um_write_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  struct um_write_args a = um_parse_write_args(argc, argv);
  return um_write(m, a.fd, argv[1], a.len, a.file_offset);
}

/*
 * call-seq: writev(fd, *buffers, file_offset = -1) -> Integer
 *
 * Writes every buffer in order, all of them; returns the total bytes.
 *
 * @example
 *   r, w = UM.pipe
 *   machine.writev(w, "a", "bc", "def")  # => 6
 */
static VALUE um_writev_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  rb_check_arity(argc, 1, UNLIMITED_ARGUMENTS);
  int fd = um_arg_fd(argv[0]);
  int count = argc - 1;
  int64_t file_offset = -1;
  if (count > 0 && RB_INTEGER_TYPE_P(argv[argc - 1])) {
    file_offset = um_arg_file_offset(argv[argc - 1]);
    count--;
  }
  if (count > IOV_MAX) rb_raise(rb_eArgError, "too many buffers (%d, at most %d)", count, IOV_MAX);
  for (int i = 0; i < count; i++) um_arg_buffer(argv[1 + i]);
  return um_writev(m, fd, count, argv + 1, file_offset);
}

/*
 * call-seq: write_async(fd, buffer, len = nil, file_offset = -1) -> buffer
 *
 * Writes without waiting; the buffer is kept alive until the kernel is done.
 * Failures are counted in metrics[:async_errors].
 *
 * @example
 *   r, w = UM.pipe
 *   machine.write_async(w, "hello")  # => "hello", at once
 *   machine.read(r, buf = +"", 10)   # => 5
 */
static VALUE um_write_async_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  struct um_write_args a = um_parse_write_args(argc, argv);
  return um_write_async(m, a.fd, argv[1], a.len, a.file_offset);
}

/*
 * call-seq:
 *   close -> nil
 *   close(fd) -> fd
 *
 * With no argument, closes the machine: its ring, eventfd and sidecar go
 * now, not at GC; afterwards every operation raises UM::Error "machine is
 * closed". Idempotent. Raises UM::Error while fibers wait on operations or
 * are scheduled (terminate and join them first). Thread#machine makes a new
 * machine for a thread whose machine was closed.
 *
 * With an fd, closes the fd and returns it. Ruby's reserved fds and the
 * machine's own fds are refused with UM::Error.
 *
 * @example
 *   r, w = UM.pipe
 *   machine.close(w)  # => w
 *   machine.close     # the machine itself: => nil
 */
static VALUE um_close_m(int argc, VALUE *argv, VALUE self) {
  if (rb_check_arity(argc, 0, 1) == 0) return um_close_machine(self);
  return um_close(um_get_machine(self), um_arg_fd(argv[0]));
}

/*
 * Closes the fd without waiting; returns it. Reserved fds as for #close.
 *
 * @example
 *   r, w = UM.pipe
 *   machine.close_async(w)  # => w, without waiting
 */
static VALUE um_close_async_m(VALUE self, VALUE fd) {
  return um_close_async(um_get_machine(self), um_arg_fd(fd));
}

/*
 * Flushes the file's data and metadata to storage.
 *
 * @example
 *   machine.open("/tmp/log", UM::O_CREAT | UM::O_WRONLY) do |fd|
 *     machine.write(fd, "entry\n")
 *     machine.fsync(fd)  # => 0
 *   end
 */
static VALUE um_fsync_m(VALUE self, VALUE fd) {
  return um_fsync(um_get_machine(self), um_arg_fd(fd));
}

/*
 * call-seq: statx(dirfd, path, flags, mask) -> Hash
 *
 * File status: :dev, :ino, :mode, :nlink, :uid, :gid, :size, :blocks,
 * :blksize, :rdev, :mask and the times :atime, :mtime, :ctime, :btime as
 * Float seconds.
 *
 * @example
 *   st = machine.statx(UM::AT_FDCWD, "/etc/hostname", 0, UM::STATX_ALL)
 *   st[:size]   # => 7
 *   st[:mtime]  # => 1733600000.25
 */
static VALUE um_statx_m(VALUE self, VALUE dirfd, VALUE path, VALUE flags, VALUE mask) {
  struct um *m = um_get_machine(self);
  int fd = um_arg_fd(dirfd);
  int f = (int)um_arg_long(flags, "flags");
  unsigned msk = (unsigned)um_arg_long(mask, "mask");
  return um_statx(m, fd, path, f, msk);
}

static unsigned um_count_arg(VALUE v) {
  long n = um_arg_long(v, "length");
  if (n < 0) rb_raise(rb_eArgError, "negative length: %ld", n);
  return n > UINT_MAX ? UINT_MAX : (unsigned)n;
}

/*
 * Moves up to +nbytes+ from one fd to another, one of them a pipe.
 *
 * @example
 *   r, w = UM.pipe
 *   machine.open("/etc/hostname", UM::O_RDONLY) do |fd|
 *     machine.splice(fd, w, 4096)  # => bytes moved into the pipe
 *   end
 */
static VALUE um_splice_m(VALUE self, VALUE in, VALUE out, VALUE nbytes) {
  struct um *m = um_get_machine(self);
  return um_splice(m, um_arg_fd(in), um_arg_fd(out), um_count_arg(nbytes));
}

/*
 * Duplicates up to +nbytes+ from one pipe to another without consuming.
 *
 * @example
 *   r1, w1 = UM.pipe
 *   r2, w2 = UM.pipe
 *   machine.write(w1, "data")
 *   machine.tee(r1, w2, 4)  # => 4; r1 still holds "data"
 */
static VALUE um_tee_m(VALUE self, VALUE in, VALUE out, VALUE nbytes) {
  struct um *m = um_get_machine(self);
  return um_tee(m, um_arg_fd(in), um_arg_fd(out), um_count_arg(nbytes));
}

/*
 * Waits until the fd is ready for the events in +mask+; returns them.
 *
 * @example
 *   r, w = UM.pipe
 *   machine.write(w, "x")
 *   machine.poll(r, UM::POLLIN)  # => UM::POLLIN
 */
static VALUE um_poll_m(VALUE self, VALUE fd, VALUE mask) {
  struct um *m = um_get_machine(self);
  return um_poll(m, um_arg_fd(fd), (unsigned)um_arg_long(mask, "mask"));
}

// Class methods

/*
 * Version of the running kernel, e.g. 618 for 6.18.
 *
 * @example
 *   UM.kernel_version  # => 612 on Linux 6.12
 */
static VALUE um_s_kernel_version(VALUE klass) {
  return INT2NUM(um_kernel_version());
}

/*
 * A pipe: [read_fd, write_fd].
 *
 * @example
 *   r, w = UM.pipe  # => [5, 6]
 */
static VALUE um_s_pipe(VALUE klass) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) rb_sys_fail("pipe");
  return rb_ary_new_from_args(2, INT2NUM(fds[0]), INT2NUM(fds[1]));
}

/*
 * A pair of connected sockets: [fd, fd].
 *
 * @example
 *   a, b = UM.socketpair(UM::AF_UNIX, UM::SOCK_STREAM, 0)
 */
static VALUE um_s_socketpair(VALUE klass, VALUE domain, VALUE type, VALUE protocol) {
  int fds[2];
  int d = (int)um_arg_long(domain, "domain");
  int t = (int)um_arg_long(type, "type");
  int p = (int)um_arg_long(protocol, "protocol");
  if (socketpair(d, t | SOCK_CLOEXEC, p, fds) < 0) rb_sys_fail("socketpair");
  return rb_ary_new_from_args(2, INT2NUM(fds[0]), INT2NUM(fds[1]));
}

/*
 * A pidfd referring to the process +pid+.
 *
 * @example
 *   pid = fork { sleep 1 }
 *   pidfd = UM.pidfd_open(pid)
 *   machine.waitid(UM::P_PIDFD, pidfd, UM::WEXITED)
 */
static VALUE um_s_pidfd_open(VALUE klass, VALUE pid) {
  int fd = (int)syscall(SYS_pidfd_open, (pid_t)um_arg_long(pid, "pid"), 0);
  if (fd < 0) rb_sys_fail("pidfd_open");
  return INT2NUM(fd);
}

/*
 * Sends the signal to the process the pidfd refers to; returns 0.
 *
 * @example
 *   pid = fork { sleep }
 *   UM.pidfd_send_signal(UM.pidfd_open(pid), UM::SIGTERM)  # => 0
 */
static VALUE um_s_pidfd_send_signal(VALUE klass, VALUE pidfd, VALUE sig) {
  int ret = (int)syscall(SYS_pidfd_send_signal, um_arg_fd(pidfd), (int)um_arg_long(sig, "signal"), NULL, 0);
  if (ret < 0) rb_sys_fail("pidfd_send_signal");
  return INT2NUM(ret);
}

/*
 * call-seq: UM.pr_set_child_subreaper(on = true) -> true or false
 *
 * Makes this process a child subreaper (prctl PR_SET_CHILD_SUBREAPER):
 * orphaned descendants are re-parented to it instead of to init, so it can
 * wait for them. Returns +on+.
 *
 * @example
 *   UM.pr_set_child_subreaper        # => true
 *   UM.pr_set_child_subreaper(false) # => false
 */
static VALUE um_s_pr_set_child_subreaper(int argc, VALUE *argv, VALUE klass) {
  VALUE on = rb_check_arity(argc, 0, 1) ? argv[0] : Qtrue;
  if (prctl(PR_SET_CHILD_SUBREAPER, RTEST(on) ? 1 : 0, 0, 0, 0) < 0) rb_sys_fail("prctl(PR_SET_CHILD_SUBREAPER)");
  return RTEST(on) ? Qtrue : Qfalse;
}

/*
 * call-seq: pending_fibers -> Set
 *
 * The fibers waiting on an operation of this machine.
 *
 * @example
 *   r, _w = UM.pipe
 *   f = machine.spin { machine.read(r, +"", 10) }
 *   machine.snooze
 *   machine.pending_fibers.include?(f)  # => true
 */
static VALUE um_pending_fibers_m(VALUE self) {
  VALUE list = um_pending_fibers(um_get_machine(self));
  return rb_funcall(rb_const_get(rb_cObject, rb_intern("Set")), id_new, 1, list);
}

/*
 * call-seq: thread.machine -> UM
 *
 * The thread's machine, created on first use and renewed in a forked child
 * or after it was closed.
 */
static VALUE um_thread_machine(VALUE thread) {
  VALUE machine = rb_attr_get(thread, id_machine_ivar);
  if (!NIL_P(machine)) {
    struct um *m = um_get_struct(machine);
    if (m->ring_initialized && !m->closed && m->fork_generation == um_fork_generation) return machine;
  }
  if (thread != rb_thread_current())
    rb_raise(eUMError, "a thread's machine can only be created by the thread itself");
  machine = rb_class_new_instance(0, NULL, cUM);
  rb_ivar_set(thread, id_machine_ivar, machine);
  return machine;
}

static void um_atfork_child(void) {
  um_fork_generation++;
}

void Init_um_class(void) {
  id_new = rb_intern("new");
  id_machine_ivar = rb_intern("__um_machine");
  sym_size = ID2SYM(rb_intern("size"));
  sym_sqpoll = ID2SYM(rb_intern("sqpoll"));
  sym_sidecar = ID2SYM(rb_intern("sidecar"));
  pthread_atfork(NULL, NULL, um_atfork_child);
  rb_global_variable(&cFiber);
  cFiber = rb_const_get(rb_cObject, rb_intern("Fiber"));

  cUM = rb_define_class("UringMachine", rb_cObject);
  rb_define_const(rb_cObject, "UM", cUM);
  rb_define_alloc_func(cUM, um_allocate);

  /*
   * Document-class: UringMachine::Error
   *
   * Misuse of a machine: a closed machine, the wrong thread, a fiber state.
   */
  eUMError = rb_define_class_under(cUM, "Error", rb_eStandardError);
  /*
   * Document-class: UringMachine::Terminate
   *
   * Raised in a fiber by UringMachine#terminate; not a StandardError.
   */
  eUMTerminate = rb_define_class_under(cUM, "Terminate", rb_eException);

  rb_define_method(cUM, "initialize", um_initialize, -1);
  rb_define_method(cUM, "size", um_size_m, 0);
  rb_define_method(cUM, "sqpoll_mode?", um_sqpoll_mode_p, 0);
  rb_define_method(cUM, "sidecar_mode?", um_sidecar_mode_p, 0);
  rb_define_method(cUM, "closed?", um_closed_p, 0);
  rb_define_method(cUM, "pending_fibers", um_pending_fibers_m, 0);
  rb_define_method(cUM, "submit", um_submit_m, 0);
  rb_define_private_method(cUM, "main_fiber", um_main_fiber, 0);
  rb_define_method(cUM, "wakeup", um_wakeup_m, 0);
  rb_define_method(cUM, "forked?", um_forked_p, 0);
  rb_define_method(cUM, "metrics", um_metrics_m, 0);
  rb_define_method(cUM, "profile_mode=", um_profile_mode_set, 1);
  rb_define_method(cUM, "profile_mode?", um_profile_mode_p, 0);
  rb_define_method(cUM, "fiber_cpu_time", um_fiber_cpu_time_m, -1);

  rb_define_method(cUM, "schedule", um_schedule_m, 2);
  rb_define_private_method(cUM, "transfer_now", um_transfer_now_m, 2);
  rb_define_method(cUM, "snooze", um_snooze_m, 0);
  rb_define_method(cUM, "yield", um_yield_m, 0);
  rb_define_method(cUM, "switch", um_switch_m, 0);
  rb_define_method(cUM, "sleep", um_sleep_m, -1);
  rb_define_method(cUM, "timeout", um_timeout_m, 2);
  rb_define_method(cUM, "periodically", um_periodically_m, 1);

  rb_define_method(cUM, "open", um_open_m, -1);
  rb_define_method(cUM, "read", um_read_m, -1);
  rb_define_method(cUM, "write", um_write_m, -1);
  rb_define_method(cUM, "writev", um_writev_m, -1);
  rb_define_method(cUM, "write_async", um_write_async_m, -1);
  rb_define_method(cUM, "close", um_close_m, -1);
  rb_define_method(cUM, "close_async", um_close_async_m, 1);
  rb_define_method(cUM, "fsync", um_fsync_m, 1);
  rb_define_method(cUM, "statx", um_statx_m, 4);
  rb_define_method(cUM, "splice", um_splice_m, 3);
  rb_define_method(cUM, "tee", um_tee_m, 3);
  rb_define_method(cUM, "poll", um_poll_m, 2);

  rb_define_singleton_method(cUM, "kernel_version", um_s_kernel_version, 0);
  rb_define_singleton_method(cUM, "pipe", um_s_pipe, 0);
  rb_define_singleton_method(cUM, "socketpair", um_s_socketpair, 3);
  rb_define_singleton_method(cUM, "pidfd_open", um_s_pidfd_open, 1);
  rb_define_singleton_method(cUM, "pidfd_send_signal", um_s_pidfd_send_signal, 2);
  rb_define_singleton_method(cUM, "pr_set_child_subreaper", um_s_pr_set_child_subreaper, -1);

  rb_define_method(rb_cThread, "machine", um_thread_machine, 0);
}
