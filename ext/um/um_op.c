// Operation records: pool, lifecycle, waiting, cancellation.
//
// A record lives while any of these holds it: the kernel (OP_F_IN_KERNEL,
// until its last CQE), the runqueue (OP_F_RUNQUEUE) and a holder
// (OP_F_HELD: the fiber waiting on it, a timeout frame or an AsyncOp). When
// the last one lets go it returns to the machine's free list. Records are
// plain malloc'd memory, so pointers handed to the kernel (timespecs, statx
// buffers, iovecs) never move.
#include "um.h"
#include "um_buffers.h"
#include <errno.h>
#include <unistd.h>

#define UM_OP_CHUNK_SIZE 64

static void um_op_chunk_alloc(struct um *m) {
  struct um_op_chunk *chunk = malloc(sizeof(struct um_op_chunk) + UM_OP_CHUNK_SIZE * sizeof(struct um_op));
  if (!chunk) rb_raise(rb_eNoMemError, "failed to allocate operation records");

  chunk->count = UM_OP_CHUNK_SIZE;
  chunk->next = m->chunks;
  m->chunks = chunk;
  for (unsigned i = 0; i < UM_OP_CHUNK_SIZE; i++) {
    struct um_op *op = &chunk->ops[i];
    op->next = m->free_ops;
    m->free_ops = op;
  }
  m->metrics.ops_free += UM_OP_CHUNK_SIZE;
  m->metrics.ops_allocated += UM_OP_CHUNK_SIZE;
}

struct um_op *um_op_new(struct um *m, enum um_op_kind kind, unsigned flags) {
  if (!m->free_ops) um_op_chunk_alloc(m);

  struct um_op *op = m->free_ops;
  m->free_ops = op->next;
  m->metrics.ops_free--;

  op->prev = op->next = NULL;
  op->kind = kind;
  op->flags = flags;
  op->res = 0;
  op->cqe_flags = 0;
  op->multishot_count = 0;
  op->buf_ptr = NULL;
  op->fiber = op->value = op->buffer = op->extra = Qnil;
  op->data.iovecs = NULL;

  op->live_prev = NULL;
  op->live_next = m->live_ops;
  if (m->live_ops) m->live_ops->live_prev = op;
  m->live_ops = op;

  if (flags & OP_F_TRANSIENT) m->metrics.ops_transient++;
  return op;
}

static void um_op_free(struct um *m, struct um_op *op) {
  assert(!(op->flags & (OP_F_IN_KERNEL | OP_F_RUNQUEUE | OP_F_HELD)));
  if (op->live_prev) op->live_prev->live_next = op->live_next;
  else m->live_ops = op->live_next;
  if (op->live_next) op->live_next->live_prev = op->live_prev;

  if ((op->kind == OP_WRITEV || op->kind == OP_SENDV) && op->data.iovecs) free(op->data.iovecs);
  if (op->flags & OP_F_RESULTS) free(op->data.results.items);
  if (op->flags & OP_F_TRANSIENT) m->metrics.ops_transient--;

  op->fiber = op->value = op->buffer = op->extra = Qnil;
  op->next = m->free_ops;
  m->free_ops = op;
  m->metrics.ops_free++;
}

// Frees the record if nothing holds it any more.
void um_op_free_unused(struct um *m, struct um_op *op) {
  if (!(op->flags & (OP_F_IN_KERNEL | OP_F_RUNQUEUE | OP_F_HELD))) um_op_free(m, op);
}

void um_op_set_buffer(struct um *m, struct um_op *op, VALUE buffer) {
  RB_OBJ_WRITE(m->self, &op->buffer, buffer);
}

// Gives back what the queued, unconsumed results of a multishot op hold.
static void um_op_drop_results(struct um *m, struct um_op *op) {
  for (uint32_t i = op->data.results.head; i < op->data.results.count; i++) {
    struct um_result *r = &op->data.results.items[i];
    um_pool_recycle(m, r->flags);
    if ((op->flags & OP_F_RESULT_FD) && r->res >= 0) close(r->res);
  }
  op->data.results.head = op->data.results.count = 0;
}

// The holder lets go: unlock its buffer, stop waiting.
void um_op_release(struct um *m, struct um_op *op) {
  if (op->flags & OP_F_RESULTS) um_op_drop_results(m, op);
  if (op->flags & OP_F_LOCKED) {
    op->flags &= ~OP_F_LOCKED;
    um_buffer_unlock(op->buffer);
  }
  op->flags &= ~(OP_F_HELD | OP_F_WAITING);
  if (op->flags & OP_F_RUNQUEUE) um_runqueue_remove(m, op);
  um_op_free_unused(m, op);
}

// An fd the kernel created for an op whose waiter is gone (woken early)
// would leak: close it.
static void um_op_drop_result_fd(struct um *m, struct um_op *op) {
  // Likewise a pool buffer the kernel filled for it goes back to the pool.
  if ((op->flags & OP_F_COMPLETED) && (op->cqe_flags & IORING_CQE_F_BUFFER)) {
    um_pool_recycle(m, op->cqe_flags);
    op->cqe_flags &= ~IORING_CQE_F_BUFFER;
  }
  if (!(op->flags & OP_F_RESULT_FD) || !(op->flags & OP_F_COMPLETED) || op->res < 0) return;

  op->flags &= ~OP_F_RESULT_FD;
  // A plain close: this may run while completions are being processed,
  // where taking an SQE could mean flushing the SQ.
  close(op->res);
}

// Called for each CQE of the op.
// Queues a multishot CQE for the fiber consuming them; with nobody holding
// the op, gives its buffer back or closes its fd at once.
static void um_op_push_result(struct um *m, struct um_op *op, int32_t res, uint32_t cqe_flags) {
  if (!(op->flags & OP_F_HELD)) {
    um_pool_recycle(m, cqe_flags);
    if ((op->flags & OP_F_RESULT_FD) && res >= 0) close(res);
    return;
  }
  if (op->data.results.count == op->data.results.cap) {
    uint32_t cap = op->data.results.cap ? op->data.results.cap * 2 : 8;
    struct um_result *items = realloc(op->data.results.items, cap * sizeof(struct um_result));
    if (!items) rb_bug("UringMachine: out of memory queueing a completion");
    op->data.results.items = items;
    op->data.results.cap = cap;
  }
  op->data.results.items[op->data.results.count++] = (struct um_result){ .res = res, .flags = cqe_flags, .ptr = op->buf_ptr };
}

void um_op_complete(struct um *m, struct um_op *op, int32_t res, uint32_t cqe_flags) {
  assert(op->flags & OP_F_IN_KERNEL);
  op->res = res;
  op->cqe_flags = cqe_flags;
  op->buf_ptr = (cqe_flags & IORING_CQE_F_BUFFER) && m->pool ? um_pool_take(m, cqe_flags, res) : NULL;
  if (op->flags & OP_F_RESULTS) um_op_push_result(m, op, res, cqe_flags);

  bool final = !(op->flags & OP_F_MULTISHOT) || !(cqe_flags & IORING_CQE_F_MORE);
  if (op->flags & OP_F_MULTISHOT) op->multishot_count++;
  if (final) {
    op->flags = (op->flags & ~OP_F_IN_KERNEL) | OP_F_COMPLETED;
    m->metrics.ops_pending--;
  }
  if (op->kind == OP_WRITE_ASYNC && res < 0) m->metrics.async_errors++;
  // A cancel can miss a multishot op that was completing at that moment
  // (the op then goes on): cancel it again.
  if (!final && (op->flags & OP_F_CANCELED)) {
    op->flags &= ~OP_F_CANCELED;
    um_op_cancel(m, op);
  }

  if ((op->flags & OP_F_WAITING) && !(op->flags & OP_F_RUNQUEUE))
    um_runqueue_push(m, op);
  else {
    if (final && !(op->flags & (OP_F_HELD | OP_F_RESULTS))) um_op_drop_result_fd(m, op);
    um_op_free_unused(m, op);
  }
}

static VALUE um_switch_protected(VALUE arg) {
  return um_switch((struct um *)arg);
}

static bool um_is_exception(VALUE v) {
  return !RB_SPECIAL_CONST_P(v) && RB_TYPE_P(v, T_OBJECT) && rb_obj_is_kind_of(v, rb_eException);
}

VALUE um_raise_if_exception(VALUE v) {
  if (um_is_exception(v)) rb_exc_raise(v);
  return v;
}

void um_raise_on_error(int32_t res, const char *syscall) {
  if (res < 0) rb_syserr_fail(-res, syscall);
}

// The fiber was resumed by something other than its operation: take the op
// off the runqueue if its completion is already there, cancel it in the
// kernel, and when the kernel may still write into the caller's memory, wait
// (letting other fibers run) until the kernel has let go. Wakes that arrive
// meanwhile are not lost: the first exception or jump among them is kept.
void um_op_abandon(struct um *m, struct um_op *op, int *state, VALUE *errinfo, VALUE *pending) {
  op->flags &= ~OP_F_WAITING;
  if (op->flags & OP_F_RUNQUEUE) um_runqueue_remove(m, op);
  if (!(op->flags & OP_F_IN_KERNEL)) return;

  um_op_cancel(m, op);
  if (!(op->flags & OP_F_CALLER_MEM)) return;

  op->flags |= OP_F_WAITING;
  // A ring that fails to wait (its fd closed under us) will never report the
  // cancellation: give up rather than spin.
  while ((op->flags & OP_F_IN_KERNEL) && !m->ring_broken) {
    int wait_state = 0;
    VALUE v = rb_protect(um_switch_protected, (VALUE)m, &wait_state);
    if (m->resumed_by == op && !wait_state) continue;
    if (wait_state) {
      VALUE e = um_errinfo_take();
      if (!*state) {
        *state = wait_state;
        *errinfo = e;
      }
    }
    else if (!*state && !um_is_exception(*pending) && um_is_exception(v))
      *pending = v;
  }
  op->flags &= ~OP_F_WAITING;
  if (op->flags & OP_F_RUNQUEUE) um_runqueue_remove(m, op);
}

// Whether the op moved data before it could be abandoned: its result must
// reach the caller, or the bytes would be lost (read) or sent twice (write).
static bool um_op_moved_data(struct um_op *op) {
  if (!(op->flags & OP_F_COMPLETED) || (op->flags & OP_F_MULTISHOT) || op->res <= 0) return false;
  switch (op->kind) {
    case OP_READ: case OP_WRITE: case OP_WRITEV: case OP_RECV: case OP_SEND: case OP_SENDV:
    case OP_SENDMSG: case OP_RECVMSG:
      return true;
    default:
      return false;
  }
}

// The wake that interrupted an op which completed anyway goes to the
// fiber's next switch: a timer of #timeout goes back on the runqueue (its
// block's end drops it, so it never fires late), another exception or value
// is scheduled again. Returns false for a jump that is not an exception
// (Thread#kill), which cannot wait.
static bool um_op_redeliver(struct um *m, struct um_op *timer, int state, VALUE errinfo, VALUE pending) {
  if (timer) {
    if (!(timer->flags & OP_F_RUNQUEUE)) um_runqueue_push(m, timer);
    return true;
  }
  VALUE value = state ? errinfo : pending;
  if (state && !um_is_exception(value)) return false;
  um_schedule(m, rb_fiber_current(), value);
  return true;
}

// What a failed rb_protect left in $!. An exception is taken out (a wait
// made meanwhile must not see it); anything else (a thread kill's or a
// throw's tag data) is left in place for rb_jump_tag, since $! accepts
// only exceptions: restoring it would raise TypeError instead.
VALUE um_errinfo_take(void) {
  VALUE errinfo = rb_errinfo();
  if (rb_obj_is_kind_of(errinfo, rb_eException)) rb_set_errinfo(Qnil);
  return errinfo;
}

// Goes on with a jump that rb_protect stopped, errinfo as um_errinfo_take
// gave it.
void um_errinfo_rethrow(int state, VALUE errinfo) {
  if (rb_obj_is_kind_of(errinfo, rb_eException)) rb_set_errinfo(errinfo);
  rb_jump_tag(state);
}

// Suspends the calling fiber until the op completes. Returns Qundef when it
// did; the op is still held and the caller reads op->res, then releases it.
// When the fiber is resumed otherwise, the op is abandoned (cancelled, and
// waited for where the kernel may touch caller memory) and, with release,
// released; an exception it was resumed with is raised, another value is
// returned in place of the result (as the 1.0 gem does).
static VALUE um_op_wait_for(struct um *m, struct um_op *op, bool release) {
  op->flags |= OP_F_HELD | OP_F_WAITING;
  RB_OBJ_WRITE(m->self, &op->fiber, rb_fiber_current());

  int state = 0;
  VALUE v = rb_protect(um_switch_protected, (VALUE)m, &state);
  if (!state && m->resumed_by == op) {
    op->flags &= ~OP_F_WAITING;
    return Qundef;
  }

  // A #timeout timer of this fiber (held until its block ends, so it stays
  // valid); other wakers may go back to the pool at once.
  struct um_op *waker = m->resumed_by;
  struct um_op *timer = waker && waker != op && waker->kind == OP_TIMEOUT && (waker->flags & OP_F_HELD) &&
    waker->fiber == op->fiber ? waker : NULL;
  VALUE pending = state ? Qnil : v;
  VALUE errinfo = state ? um_errinfo_take() : Qnil;
  um_op_abandon(m, op, &state, &errinfo, &pending);
  if (release && um_op_moved_data(op) && um_op_redeliver(m, timer, state, errinfo, pending)) {
    RB_GC_GUARD(errinfo);
    return Qundef;
  }
  if (!(op->flags & OP_F_RESULTS)) um_op_drop_result_fd(m, op);
  if (release) um_op_release(m, op);
  if (state) um_errinfo_rethrow(state, errinfo);
  RB_GC_GUARD(errinfo);
  return um_raise_if_exception(pending);
}

VALUE um_op_run(struct um *m, struct um_op *op) {
  return um_op_wait_for(m, op, true);
}

// As um_op_run, but an op abandoned on an early wake stays held: for ops
// that live across several waits and are released by their owner's ensure.
VALUE um_op_wait(struct um *m, struct um_op *op) {
  return um_op_wait_for(m, op, false);
}

// um_op_run for the common case: returns Qundef with *res set and the op
// released when it completed, else the value the fiber was woken with.
VALUE um_op_await(struct um *m, struct um_op *op, int32_t *res) {
  VALUE v = um_op_run(m, op);
  if (v != Qundef) return v;
  *res = op->res;
  um_op_release(m, op);
  return Qundef;
}

// Cancels the op if the kernel still has it and lets go of it.
void um_op_discard(struct um *m, struct um_op *op) {
  um_op_cancel(m, op);
  um_op_release(m, op);
}

void um_ops_mark(struct um *m) {
  for (struct um_op *op = m->live_ops; op; op = op->live_next) {
    rb_gc_mark_movable(op->fiber);
    rb_gc_mark_movable(op->value);
    // Memory the kernel reads or writes must not move.
    rb_gc_mark(op->buffer);
    if (RB_TYPE_P(op->extra, T_ARRAY)) {
      long len = RARRAY_LEN(op->extra);
      for (long i = 0; i < len; i++) rb_gc_mark(RARRAY_AREF(op->extra, i));
    }
    rb_gc_mark(op->extra);
  }
}

void um_ops_compact(struct um *m) {
  for (struct um_op *op = m->live_ops; op; op = op->live_next) {
    op->fiber = rb_gc_location(op->fiber);
    op->value = rb_gc_location(op->value);
  }
}

void um_ops_free_all(struct um *m) {
  for (struct um_op *op = m->live_ops; op; op = op->live_next)
    if ((op->kind == OP_WRITEV || op->kind == OP_SENDV) && op->data.iovecs) free(op->data.iovecs);
    else if (op->flags & OP_F_RESULTS) free(op->data.results.items);

  struct um_op_chunk *chunk = m->chunks;
  while (chunk) {
    struct um_op_chunk *next = chunk->next;
    free(chunk);
    chunk = next;
  }
  m->chunks = NULL;
  m->live_ops = m->free_ops = NULL;
}
