// Futex-based mutex and queue, usable across fibers, threads and machines.
//
// The futex words live in malloc'd memory owned by the Mutex/Queue objects
// (never moved by the GC); an op waiting on one keeps its object alive.
// Waits and wakes go through io_uring (Linux 6.7); a wake is waited for, so
// the woken fibers are on the runqueue when the waker resumes.
#include "um.h"
#include "um_sync.h"
#include <errno.h>

#define UM_FUTEX_FLAGS (FUTEX2_SIZE_U32 | FUTEX2_PRIVATE)

static void um_futex_require(void) {
  um_require_kernel(607, "waiting on a UM::Mutex or UM::Queue (io_uring futex)");
}

// Suspends until the word changes from expected or a wake arrives. Returns
// Qundef normally; another value when the fiber was woken early (see
// um_op_run).
static VALUE um_futex_wait(struct um *m, uint32_t *word, uint32_t expected, VALUE owner) {
  um_futex_require();
  struct um_op *op = um_op_new(m, OP_FUTEX_WAIT, 0);
  RB_OBJ_WRITE(m->self, &op->extra, owner);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  io_uring_prep_futex_wait(sqe, word, expected, FUTEX_BITSET_MATCH_ANY, UM_FUTEX_FLAGS, 0);

  int32_t res;
  VALUE v = um_op_await(m, op, &res);
  if (v != Qundef) return v;
  // EAGAIN: the word had already changed, which is what we wait for.
  if (res < 0 && res != -EAGAIN) um_raise_on_error(res, "futex_wait");
  return Qundef;
}

static VALUE um_futex_wake(struct um *m, uint32_t *word, uint32_t count, VALUE owner) {
  // Before 6.7 nobody can be waiting: a wait raises instead.
  if (um_kernel_version() < 607) return Qundef;

  struct um_op *op = um_op_new(m, OP_FUTEX_WAKE, 0);
  RB_OBJ_WRITE(m->self, &op->extra, owner);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  io_uring_prep_futex_wake(sqe, word, count, FUTEX_BITSET_MATCH_ANY, UM_FUTEX_FLAGS, 0);

  int32_t res;
  VALUE v = um_op_await(m, op, &res);
  if (v != Qundef) return v;
  um_raise_on_error(res, "futex_wake");
  return Qundef;
}

// Mutex: the word is 0 (unlocked), 1 (locked) or 2 (locked, maybe waiters).
// The uncontended paths are a compare-and-swap and a decrement: no machine,
// no kernel.

bool um_mutex_trylock(struct um_mutex *mutex) {
  uint32_t c = 0;
  return __atomic_compare_exchange_n(&mutex->state, &c, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

void um_mutex_lock(struct um *m, struct um_mutex *mutex, VALUE obj) {
  if (mutex->owner == rb_fiber_current()) rb_raise(eUMError, "deadlock; recursive locking");
  uint32_t c = __atomic_exchange_n(&mutex->state, 2, __ATOMIC_ACQUIRE);
  while (c != 0) {
    VALUE v = um_futex_wait(m, &mutex->state, 2, obj);
    // Woken otherwise (an exception would have been raised): give up.
    if (v != Qundef) rb_raise(eUMError, "interrupted while waiting for a mutex");
    c = __atomic_exchange_n(&mutex->state, 2, __ATOMIC_ACQUIRE);
  }
}

// Returns true when a waiter may need waking (um_mutex_wake).
bool um_mutex_unlock(struct um_mutex *mutex) {
  if (__atomic_fetch_sub(&mutex->state, 1, __ATOMIC_RELEASE) == 1) return false;
  __atomic_store_n(&mutex->state, 0, __ATOMIC_RELEASE);
  return true;
}

void um_mutex_wake(struct um *m, struct um_mutex *mutex, VALUE obj) {
  um_futex_wake(m, &mutex->state, 1, obj);
}

// Queue: the word is a sequence number bumped by every push, so that a
// consumer's wait fails at once (EAGAIN) if an item arrived meanwhile.

static void um_queue_signal(struct um *m, struct um_queue *queue, VALUE obj) {
  __atomic_add_fetch(&queue->seq, 1, __ATOMIC_RELEASE);
  if (queue->waiters) um_futex_wake(m, &queue->seq, 1, obj);
}

VALUE um_queue_push(struct um *m, struct um_queue *queue, VALUE obj, VALUE value) {
  rb_ary_push(queue->items, value);
  um_queue_signal(m, queue, obj);
  return obj;
}

VALUE um_queue_unshift(struct um *m, struct um_queue *queue, VALUE obj, VALUE value) {
  rb_ary_unshift(queue->items, value);
  um_queue_signal(m, queue, obj);
  return obj;
}

struct um_queue_wait_ctx {
  struct um *m;
  struct um_queue *queue;
  VALUE obj;
  uint32_t seq;
};

static VALUE um_queue_wait(VALUE arg) {
  struct um_queue_wait_ctx *ctx = (struct um_queue_wait_ctx *)arg;
  return um_futex_wait(ctx->m, &ctx->queue->seq, ctx->seq, ctx->obj);
}

// Takes an item from the tail (pop) or the head (shift), waiting while the
// queue is empty.
VALUE um_queue_take(struct um *m, struct um_queue *queue, VALUE obj, bool from_tail) {
  while (RARRAY_LEN(queue->items) == 0) {
    uint32_t seq = __atomic_load_n(&queue->seq, __ATOMIC_ACQUIRE);
    queue->waiters++;
    struct um_queue_wait_ctx ctx = { .m = m, .queue = queue, .obj = obj, .seq = seq };
    int state = 0;
    VALUE v = rb_protect(um_queue_wait, (VALUE)&ctx, &state);
    queue->waiters--;
    if (state) rb_jump_tag(state);
    if (v != Qundef) return v;
  }
  return from_tail ? rb_ary_pop(queue->items) : rb_ary_shift(queue->items);
}
