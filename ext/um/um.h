// Internal API of the UringMachine engine, shared by the C files.
//
// The engine (um_*.c) knows nothing of Ruby classes beyond what it must hold
// (fibers, buffers, values to resume with); the *_class.c files hold argument
// checks and method tables and call into the engine.
#ifndef UM_H
#define UM_H

#include <ruby.h>
#include <assert.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include "um_compat.h"

// After this many consecutive runqueue switches without a visit to the
// kernel, completions are reaped without blocking, so a busy runqueue never
// starves fibers waiting on I/O.
#define UM_FAIRNESS_SWITCHES 64

enum um_op_kind {
  OP_SCHEDULE,      // runqueue entry made by #schedule / #snooze / #spin
  OP_TIMEOUT,       // sleep / timeout / prep_timeout
  OP_MULTISHOT_TIMEOUT,
  OP_READ,
  OP_WRITE,
  OP_WRITEV,
  OP_WRITE_ASYNC,
  OP_OPEN,
  OP_CLOSE,
  OP_FSYNC,
  OP_STATX,
  OP_SPLICE,
  OP_TEE,
  OP_POLL,
  OP_WAITID,
  OP_WAKEUP,        // the machine's own read on its eventfd
  OP_FUTEX_WAIT,
  OP_FUTEX_WAKE,
  OP_SOCKET,
  OP_ACCEPT,
  OP_BIND,
  OP_LISTEN,
  OP_CONNECT,
  OP_SHUTDOWN,
  OP_SEND,
  OP_SENDV,
  OP_RECV,
  OP_SENDMSG,
  OP_RECVMSG,
  OP_ACCEPT_MULTI,
  OP_RECV_MULTI,
  OP_READ_MULTI,
};

enum um_op_flag {
  OP_F_IN_KERNEL   = 1 << 0,  // submitted; the kernel holds it until its last CQE
  OP_F_HELD        = 1 << 1,  // a waiting fiber or an AsyncOp holds it
  OP_F_RUNQUEUE    = 1 << 2,  // linked into the runqueue
  OP_F_WAITING     = 1 << 3,  // a completion should schedule op->fiber
  OP_F_COMPLETED   = 1 << 4,  // the final CQE arrived
  OP_F_CANCELED    = 1 << 5,  // a cancel request was submitted
  OP_F_CALLER_MEM  = 1 << 6,  // the kernel may write to memory the caller owns
  OP_F_MULTISHOT   = 1 << 7,  // more than one CQE may come
  OP_F_TRANSIENT   = 1 << 9,  // fire and forget (write_async, schedule entries)
  OP_F_LOCKED      = 1 << 10, // op->buffer was locked by us and must be unlocked
  OP_F_RESULT_FD   = 1 << 11, // res is a new fd: closed if nobody takes the result
  OP_F_RESULTS     = 1 << 12, // multishot: CQEs are queued in data.results
  OP_F_UNSENT      = 1 << 13, // cancelled before submission: its SQE became a NOP
};

struct um_result {
  int32_t res;
  uint32_t flags;
  const char *ptr;  // data in a pool buffer (IORING_CQE_F_BUFFER)
};

struct um_op {
  struct um_op *prev, *next;            // runqueue or free list
  struct um_op *live_prev, *live_next;  // every allocated op, for GC marking

  enum um_op_kind kind;
  unsigned flags;
  int32_t res;           // result of the last CQE
  uint32_t cqe_flags;
  uint32_t multishot_count;  // CQEs seen by a multishot op, not yet consumed
  const char *buf_ptr;       // data of the last CQE in a pool buffer
  struct io_uring_sqe *sqe;  // its SQE, while sqe_seq is not yet submitted
  uint64_t sqe_seq;          // m->sqe_seq when the SQE was taken

  VALUE fiber;   // fiber to schedule on completion
  VALUE value;   // value the fiber is resumed with (schedule entries, timeouts)
  VALUE buffer;  // memory the kernel reads or writes: kept alive and pinned
  VALUE extra;   // another object to keep alive (path, iovec owner)

  union {
    struct __kernel_timespec ts;
    struct statx stx;
    siginfo_t siginfo;  // um_proc.c: waitid writes it before its CQE
    struct iovec *iovecs;
    struct { struct um_result *items; uint32_t head, count, cap; } results; // multishot ops
    struct { struct iovec *iovecs; struct msghdr msg; struct iovec iov; struct sockaddr_storage addr; union { struct cmsghdr hdr; char buf[CMSG_SPACE(sizeof(int))]; } cmsg; char byte; } net; // um_net.c; iovecs first, as it aliases data.iovecs
  } data;
};

struct um_op_chunk {
  struct um_op_chunk *next;
  unsigned count;
  struct um_op ops[];
};

struct um_metrics {
  uint64_t total_ops;
  uint64_t total_switches;
  uint64_t total_waits;
  uint64_t async_errors;   // failed write_async / close_async operations
  unsigned ops_pending;    // in the kernel
  unsigned ops_runqueue;
  unsigned ops_free;
  unsigned ops_transient;
  unsigned ops_allocated;
  double time_total_wait;  // seconds spent waiting in the kernel (profile mode)
};

struct um {
  VALUE self;
  int refs;                // the Ruby object and every AsyncOp
  struct io_uring ring;
  bool ring_initialized;
  unsigned size;
  unsigned setup_flags;
  size_t ring_bytes;       // ring memory the kernel allocated, reported to the GC
  bool sqpoll_mode;
  bool defer_taskrun;
  bool closed;             // #close ran: the ring and its fds are gone
  struct um_sidecar *sidecar; // um_sidecar.c: the helper thread of sidecar mode, or NULL

  VALUE thread;            // owning thread
  VALUE main_fiber;        // the fiber that created the machine
  bool main_fiber_spun;    // ...was itself spun by a machine (um_fiber.c)
  bool main_waiting;       // the main fiber is suspended in this machine's switch
  unsigned fork_generation; // a change means we are in a forked child
  unsigned direct_streak;  // direct I/O attempts done without a switch in a row (um_direct.c)
  uint8_t *fd_kinds;       // what each fd is, as far as the machine knows (um_direct.c)
  size_t fd_kinds_len;

  struct um_op *runqueue_head, *runqueue_tail;
  struct um_op *free_ops;
  struct um_op *live_ops;
  struct um_op_chunk *chunks;

  unsigned switch_count;   // consecutive runqueue switches (fairness)
  uint64_t sqe_seq;        // SQEs taken for ops so far
  uint64_t submitted_seq;  // sqe_seq at the last submission: later SQEs are unsent
  struct um_op *resumed_by; // the entry whose fiber was just transferred to
  bool ring_broken;        // waiting failed for good (e.g. the ring fd was closed)

  int wakeup_fd;           // eventfd other threads write to
  bool wakeup_armed;
  uint64_t wakeup_buf;
  struct um_op *wakeup_op;
  struct um_op wakeup_record; // internal: not in the pool, holds no Ruby object

  bool profile_mode;
  double last_cpu_time;    // thread CPU time at the last switch (profile mode)

  VALUE registered_buffers; // um_regbuf.c: frozen Array of the locked IO::Buffers, or Qnil/Qfalse
  unsigned fixed_ops_pending; // um_regbuf.c: fibers inside read_fixed/write_fixed

  struct um_buffer_pool *pool; // provided buffers, set up on first use
  struct um_metrics metrics;
};

extern VALUE cUM;
extern VALUE eUMError;
extern VALUE eUMTerminate;
extern unsigned um_fork_generation;

// um_ring.c: ring setup, feature probing, submit, reap, wait
void um_ring_setup(struct um *m, unsigned size, bool sqpoll, double sqpoll_idle, bool sidecar);
void um_ring_teardown(struct um *m);
void um_machine_close(struct um *m);
bool um_machine_fd_p(struct um *m, int fd);
struct io_uring_sqe *um_get_sqe(struct um *m, struct um_op *op);
int um_submit(struct um *m);
void um_reap(struct um *m, bool block);
void um_wakeup(struct um *m);
int um_kernel_version(void);
void um_require_kernel(int version, const char *feature);

// um_sidecar.c: sidecar mode, a native thread that waits for completions
void um_sidecar_start(struct um *m);
void um_sidecar_stop(struct um *m);
void um_sidecar_wait(struct um *m);
void um_sidecar_taken(struct um *m);
bool um_sidecar_fd_p(struct um *m, int fd);

// um_op.c: operation records
struct um_op *um_op_new(struct um *m, enum um_op_kind kind, unsigned flags);
void um_op_release(struct um *m, struct um_op *op);
void um_op_free_unused(struct um *m, struct um_op *op);
void um_op_complete(struct um *m, struct um_op *op, int32_t res, uint32_t cqe_flags);
void um_op_cancel(struct um *m, struct um_op *op);
void um_op_abandon(struct um *m, struct um_op *op, int *state, VALUE *errinfo, VALUE *pending);
VALUE um_op_run(struct um *m, struct um_op *op);
VALUE um_op_wait(struct um *m, struct um_op *op);
VALUE um_op_await(struct um *m, struct um_op *op, int32_t *res);
void um_op_discard(struct um *m, struct um_op *op);
void um_op_set_buffer(struct um *m, struct um_op *op, VALUE buffer);
void um_ops_mark(struct um *m);
void um_ops_compact(struct um *m);
void um_ops_free_all(struct um *m);
void um_raise_on_error(int32_t res, const char *syscall);
VALUE um_raise_if_exception(VALUE v);
VALUE um_errinfo_take(void);
void um_errinfo_rethrow(int state, VALUE errinfo);

// um_sched.c: runqueue, switching, timers
void um_runqueue_push(struct um *m, struct um_op *op);
void um_runqueue_unshift(struct um *m, struct um_op *op);
void um_runqueue_remove(struct um *m, struct um_op *op);
struct um_op *um_runqueue_shift(struct um *m);
VALUE um_switch(struct um *m);
VALUE um_schedule(struct um *m, VALUE fiber, VALUE value);
VALUE um_transfer_now(struct um *m, VALUE fiber, VALUE value);
VALUE um_snooze(struct um *m);
VALUE um_yield(struct um *m);
VALUE um_pending_fibers(struct um *m);
double um_sleep(struct um *m, double seconds, bool forever);
VALUE um_timeout(struct um *m, double seconds, VALUE exception);
VALUE um_periodically(struct um *m, double interval);
struct um_op *um_prep_timeout(struct um *m, double seconds);
double um_fiber_cpu_time(struct um *m, VALUE fiber);
void um_set_profile_mode(struct um *m, bool on);
double um_thread_cpu_time(void);
double um_monotonic_time(void);
void um_timespec_set(struct __kernel_timespec *ts, double seconds);

// um_buffer.c: access to String and IO::Buffer memory
void *um_buffer_for_read(VALUE buffer, size_t *maxlen, ssize_t *offset);
void um_buffer_after_read(VALUE buffer, ssize_t offset, ssize_t count);
bool um_buffer_needs_bounce(VALUE buffer);
void um_buffer_bounce_in(VALUE buffer, ssize_t offset, VALUE bounce, ssize_t count);
const void *um_buffer_for_write(VALUE buffer, size_t *len);
bool um_buffer_lock(VALUE buffer);
VALUE um_io_buffer_lock(VALUE buffer);
void um_io_buffer_unlock(VALUE buffer);
void um_buffer_unlock(VALUE buffer);
size_t um_buffer_default_read_len(VALUE buffer, ssize_t offset);
VALUE um_buffer_stable(VALUE buffer);
VALUE um_buffer_frozen_copy(VALUE buffer);
struct iovec *um_iovecs_new(int argc, VALUE *argv, VALUE *buffers, size_t *total);
void um_iovecs_advance(struct iovec **first, int *count, size_t n);

// um_file.c: files and generic fd operations
struct um_transfer {
  enum um_op_kind kind;   // OP_READ, OP_WRITE, OP_RECV or OP_SEND
  int fd;
  VALUE buffer;
  ssize_t len;            // -1: the whole buffer (write/send)
  ssize_t buffer_offset;  // where in the buffer (read/recv: negative counts from the end)
  int64_t file_offset;    // read/write: -1 for the current position
  int flags;              // recv/send flags
  bool once;              // one attempt that does not wait (RWF_NOWAIT, MSG_DONTWAIT): EAGAIN is returned
  bool no_raise;          // a failure returns -errno instead of raising
  bool regular_file;      // the fd is known to be a regular file (small writes are done inline)
  bool tried;             // an attempt already found the fd not ready: no direct attempt
};
VALUE um_transfer(struct um *m, const struct um_transfer *t);

// um_fiber.c: the body of spun fibers and their end.
bool um_fiber_spun_p(VALUE fiber);
bool um_switched_by_end(struct um *m);
void um_account_cpu_time(struct um *m, VALUE current);

// um_direct.c: transfers done as syscalls that cannot wait, on a busy machine.
// Past this many ops in use (in the kernel, waiting to be submitted, or on
// the runqueue) a transfer first tries the fd directly.
#define UM_DIRECT_OPS 256
// How many direct attempts may succeed in a row without a fiber switch.
#define UM_DIRECT_STREAK_MAX 64
bool um_direct_wanted(struct um *m);
long um_direct_transfer(enum um_op_kind kind, int fd, void *ptr, size_t len, int64_t file_offset, int flags);
bool um_direct_short_file_read(int fd, long n, size_t len);
// Writes to regular files of up to this many bytes are done inline.
#define UM_INLINE_WRITE_MAX 65536
void um_fd_learn(struct um *m, int fd);
void um_fd_forget(struct um *m, int fd);
void um_fd_kinds_free(struct um *m);
bool um_fd_regular_p(struct um *m, int fd);
long um_inline_write(int fd, const void *ptr, size_t len, int64_t file_offset, bool nowait);
VALUE um_transfer_raw(struct um *m, enum um_op_kind kind, int fd, void *ptr, size_t count, bool once, int32_t *res);
VALUE um_open(struct um *m, VALUE path, int flags, mode_t mode);
VALUE um_read(struct um *m, int fd, VALUE buffer, ssize_t maxlen, ssize_t buffer_offset, int64_t file_offset);
VALUE um_write(struct um *m, int fd, VALUE buffer, ssize_t len, int64_t file_offset);
VALUE um_write_all(struct um *m, int fd, int argc, VALUE *argv, int64_t file_offset, bool socket);
VALUE um_writev(struct um *m, int fd, int argc, VALUE *buffers, int64_t file_offset);
VALUE um_write_async(struct um *m, int fd, VALUE buffer, ssize_t len, int64_t file_offset);
VALUE um_close(struct um *m, int fd);
VALUE um_close_async(struct um *m, int fd);
VALUE um_fsync(struct um *m, int fd);
VALUE um_statx(struct um *m, int dirfd, VALUE path, int flags, unsigned mask);
VALUE um_splice(struct um *m, int fd_in, int fd_out, unsigned nbytes);
VALUE um_tee(struct um *m, int fd_in, int fd_out, unsigned nbytes);
VALUE um_poll(struct um *m, int fd, unsigned mask);
VALUE um_wait_ready(struct um *m, int fd, unsigned events);

// um_proc.c: processes
VALUE um_waitid(struct um *m, int idtype, int id, int options);

// um_select.c: readiness of several fds at once
VALUE um_select(struct um *m, const int *fds, const unsigned counts[3], double timeout);

// um_net.c: sockets
VALUE um_socket(struct um *m, int domain, int type, int protocol, unsigned flags);
VALUE um_bind(struct um *m, int fd, const struct sockaddr *addr, socklen_t len);
VALUE um_listen(struct um *m, int fd, int backlog);
VALUE um_accept(struct um *m, int fd);
VALUE um_connect(struct um *m, int fd, const struct sockaddr *addr, socklen_t len);
VALUE um_send(struct um *m, int fd, VALUE buffer, ssize_t len, int flags);
VALUE um_recv(struct um *m, int fd, VALUE buffer, ssize_t maxlen, int flags);
VALUE um_sendv(struct um *m, int fd, int argc, VALUE *argv);
VALUE um_shutdown(struct um *m, int fd, int how);
VALUE um_shutdown_async(struct um *m, int fd, int how);
VALUE um_getsockopt(struct um *m, int fd, int level, int opt);
VALUE um_setsockopt(struct um *m, int fd, int level, int opt, int value);
VALUE um_send_fd(struct um *m, int sock, int fd);
VALUE um_recv_fd(struct um *m, int sock);
VALUE um_tcp_listen(struct um *m, const struct sockaddr *addr, socklen_t len);
VALUE um_tcp_connect(struct um *m, const struct sockaddr *addr, socklen_t len);

// um_multishot.c: accept_each, read_each, recv_each
VALUE um_accept_each(struct um *m, int fd);
VALUE um_read_each(struct um *m, int fd);
VALUE um_recv_each(struct um *m, int fd, int flags);

// um_regbuf.c: registered (fixed) buffers
VALUE um_register_buffers(struct um *m, VALUE buffers);
VALUE um_unregister_buffers(struct um *m);
VALUE um_read_fixed(struct um *m, int fd, unsigned index, ssize_t maxlen, size_t buffer_offset, int64_t file_offset);
VALUE um_write_fixed(struct um *m, int fd, unsigned index, ssize_t len, size_t buffer_offset, int64_t file_offset);

// um_inotify.c: inotify events read through the ring
VALUE um_inotify_get_events(struct um *m, int fd);
void Init_um_inotify(void);

// um_args.c: argument checks shared by the bindings
int um_arg_fd(VALUE v);
long um_arg_long(VALUE v, const char *name);
int um_arg_int(VALUE v, const char *name);
ssize_t um_arg_len(VALUE v, const char *name);
ssize_t um_arg_write_len(VALUE v, const char *name);
int64_t um_arg_file_offset(VALUE v);
double um_arg_interval(VALUE v);
void um_arg_buffer(VALUE buffer);

// Init functions, one per binding file
void Init_um_class(void);
void Init_um_async_op(void);
void Init_um_const(void);
void Init_um_sched(void);
void Init_um_fiber(void);
void Init_um_net_class(void);
void Init_um_sync_class(void);
void Init_um_multishot_class(void);
void Init_um_io_class(void);
void Init_um_proc_class(void);
void Init_um_select_class(void);
void Init_um_regbuf_class(void);
void Init_um_fiber_scheduler_class(void);
void Init_um_buffer(void);
void Init_um_ssl_class(void);
void Init_um_inotify_class(void);

// um_class.c
struct um *um_get_machine(VALUE self);
struct um *um_get_machine_unchecked(VALUE self);
void um_check_owner(struct um *m);
void um_unref(struct um *m);

#endif
