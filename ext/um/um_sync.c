// Futex-based mutex and queue, usable across fibers, threads and machines.
//
// The futex words live in malloc'd memory owned by the Mutex/Queue objects
// (never moved by the GC); an op waiting on one keeps its object alive.
// Waits and wakes go through io_uring (Linux 6.7); a wake is waited for, so
// the woken fibers are on the runqueue when the waker resumes.
//
// No wake is lost to an early wake-up (timeout, terminate, #schedule with
// an exception): a waiter that leaves may have taken a wake meant for
// whoever comes next, so it passes one on; a waker whose wake may not have
// reached the kernel wakes directly. Both use the futex syscall, which
// never blocks, since the fiber is on its way out with an exception.
#include "um.h"
#include "um_sync.h"
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#define UM_FUTEX_FLAGS (FUTEX2_SIZE_U32 | FUTEX2_PRIVATE)

static void um_futex_require(void) {
  um_require_kernel(607, "waiting on a UM::Mutex or UM::Queue (io_uring futex)");
}

struct um_futex_ctx {
  struct um *m;
  uint32_t *word;
  uint32_t value;  // wait: the expected value; wake: how many to wake
  VALUE owner;
};

// Wakes at once with a plain syscall, which never blocks: for fibers that
// leave with an exception pending and must not suspend again. Waiters that
// io_uring queued on the word are woken alike (same futex, same key).
static void um_futex_wake_now(uint32_t *word, int count) {
  if (um_kernel_version() < 607) return;
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

static VALUE um_futex_wait_body(VALUE arg) {
  struct um_futex_ctx *ctx = (struct um_futex_ctx *)arg;
  struct um_op *op = um_op_new(ctx->m, OP_FUTEX_WAIT, 0);
  RB_OBJ_WRITE(ctx->m->self, &op->extra, ctx->owner);
  struct io_uring_sqe *sqe = um_get_sqe(ctx->m, op);
  io_uring_prep_futex_wait(sqe, ctx->word, ctx->value, FUTEX_BITSET_MATCH_ANY, UM_FUTEX_FLAGS, 0);

  int32_t res;
  VALUE v = um_op_await(ctx->m, op, &res);
  if (v != Qundef) return v;
  // EAGAIN: the word had already changed, which is what we wait for.
  if (res < 0 && res != -EAGAIN) um_raise_on_error(res, "futex_wait");
  return Qundef;
}

// Suspends until the word changes from expected or a wake arrives. Returns
// Qundef with *state 0 when it did. Otherwise the fiber was woken early: an
// exception (*state set, to be rethrown with rb_jump_tag) or a value
// (returned). A wake may have reached this waiter just before it was
// woken early, with nobody to act on it: the caller passes it on.
static VALUE um_futex_wait(struct um *m, uint32_t *word, uint32_t expected, VALUE owner, int *state) {
  um_futex_require();
  struct um_futex_ctx ctx = { .m = m, .word = word, .value = expected, .owner = owner };
  return rb_protect(um_futex_wait_body, (VALUE)&ctx, state);
}

static VALUE um_futex_wake_body(VALUE arg) {
  struct um_futex_ctx *ctx = (struct um_futex_ctx *)arg;
  struct um_op *op = um_op_new(ctx->m, OP_FUTEX_WAKE, 0);
  RB_OBJ_WRITE(ctx->m->self, &op->extra, ctx->owner);
  struct io_uring_sqe *sqe = um_get_sqe(ctx->m, op);
  io_uring_prep_futex_wake(sqe, ctx->word, ctx->value, FUTEX_BITSET_MATCH_ANY, UM_FUTEX_FLAGS, 0);

  int32_t res;
  VALUE v = um_op_await(ctx->m, op, &res);
  if (v != Qundef) return v;
  um_raise_on_error(res, "futex_wake");
  return Qundef;
}

// Wakes up to count waiters through the ring and waits for it, so that the
// woken fibers of this machine are on the runqueue when the waker resumes.
// A waker woken early (timeout, terminate) may have had its wake turned
// into a NOP before submission: it wakes directly instead, then the
// exception goes on. An extra wake costs a waiter a re-check, no more.
static void um_futex_wake(struct um *m, uint32_t *word, uint32_t count, VALUE owner) {
  // Before 6.7 nobody can be waiting: a wait raises instead.
  if (um_kernel_version() < 607) return;

  struct um_futex_ctx ctx = { .m = m, .word = word, .value = count, .owner = owner };
  int state = 0;
  VALUE v = rb_protect(um_futex_wake_body, (VALUE)&ctx, &state);
  if (state || v != Qundef) {
    um_futex_wake_now(word, (int)count);
    if (state) rb_jump_tag(state);
  }
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
    int state = 0;
    VALUE v = um_futex_wait(m, &mutex->state, 2, obj, &state);
    if (state || v != Qundef) {
      // Leaving without the lock: the unlocker's wake may have been taken
      // by this waiter, and the next one would sleep on a free mutex. Pass
      // a wake on; a waiter it finds needlessly goes back to sleep.
      um_futex_wake_now(&mutex->state, 1);
      if (state) rb_jump_tag(state);
      rb_raise(eUMError, "interrupted while waiting for a mutex");
    }
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
// consumer's wait fails at once (EAGAIN) if an item arrived since it looked.
// The waiter count and the sequence number are sequentially consistent, so
// a producer either sees the waiter or the waiter sees the new number.

static void um_queue_signal(struct um *m, struct um_queue *queue, VALUE obj) {
  __atomic_add_fetch(&queue->seq, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&queue->waiters, __ATOMIC_SEQ_CST)) um_futex_wake(m, &queue->seq, 1, obj);
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

// Takes an item from the tail (pop) or the head (shift), waiting while the
// queue is empty.
VALUE um_queue_take(struct um *m, struct um_queue *queue, VALUE obj, bool from_tail) {
  while (RARRAY_LEN(queue->items) == 0) {
    __atomic_add_fetch(&queue->waiters, 1, __ATOMIC_SEQ_CST);
    uint32_t seq = __atomic_load_n(&queue->seq, __ATOMIC_SEQ_CST);
    int state = 0;
    VALUE v = RARRAY_LEN(queue->items) ? Qundef : um_futex_wait(m, &queue->seq, seq, obj, &state);
    uint32_t others = __atomic_sub_fetch(&queue->waiters, 1, __ATOMIC_SEQ_CST);
    if (state || v != Qundef) {
      // Leaving without an item: a push's wake may have been taken by this
      // consumer, and another would sleep beside an item. Pass it on.
      if (RARRAY_LEN(queue->items) && others) um_futex_wake_now(&queue->seq, 1);
      if (state) rb_jump_tag(state);
      return v;
    }
  }
  return from_tail ? rb_ary_pop(queue->items) : rb_ary_shift(queue->items);
}
