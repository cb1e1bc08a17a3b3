// The per-socket locks of TLS over the ring (um_ssl.c): fibers of one
// machine take turns, first come first served. A waiting fiber suspends on
// an OP_SCHEDULE record that the unlocking fiber puts on the runqueue.
#include "um.h"
#include "um_ssl.h"
#include <string.h>

static void um_ssl_lock_unqueue(struct um_ssl_lock *lock, struct um_op *op) {
  for (unsigned i = 0; i < lock->count; i++) {
    if (lock->waiters[i] != op) continue;
    memmove(&lock->waiters[i], &lock->waiters[i + 1], (lock->count - i - 1) * sizeof(*lock->waiters));
    lock->count--;
    return;
  }
}

// Wakes the first waiter if nobody holds the lock: it takes the lock when it
// runs (or, woken otherwise meanwhile, passes the turn on).
static void um_ssl_lock_wake_next(struct um *m, struct um_ssl_lock *lock) {
  if (!NIL_P(lock->owner) || !lock->count) return;
  struct um_op *op = lock->waiters[0];
  um_ssl_lock_unqueue(lock, op);
  um_runqueue_push(m, op);
}

static void um_ssl_lock_queue(struct um_ssl_lock *lock, struct um_op *op) {
  if (lock->count == lock->cap) {
    unsigned cap = lock->cap ? lock->cap * 2 : 4;
    struct um_op **waiters = realloc(lock->waiters, cap * sizeof(*waiters));
    if (!waiters) rb_raise(rb_eNoMemError, "cannot queue a fiber for the SSL socket");
    lock->waiters = waiters;
    lock->cap = cap;
  }
  lock->waiters[lock->count++] = op;
}

struct um_ssl_lock_wait_arg {
  struct um *m;
  struct um_op *op;
};

static VALUE um_ssl_lock_wait(VALUE arg) {
  struct um_ssl_lock_wait_arg *a = (struct um_ssl_lock_wait_arg *)arg;
  return um_op_run(a->m, a->op);
}

// Takes the lock for the calling fiber (holder: the object whose write
// barrier covers the lock). Returns Qundef once taken, or the value a wake
// gave the fiber instead; raises what it was woken with. A fiber that
// holds the lock already (re-entering from a callback) gets UM::Error.
VALUE um_ssl_lock_take(struct um *m, struct um_ssl_lock *lock, VALUE holder, const char *what) {
  VALUE fiber = rb_fiber_current();
  if (lock->owner == fiber)
    rb_raise(eUMError, "this fiber is already %s on this SSL socket (re-entered from a callback?)", what);
  while (!NIL_P(lock->owner)) {
    struct um_op *op = um_op_new(m, OP_SCHEDULE, 0);
    um_ssl_lock_queue(lock, op);
    struct um_ssl_lock_wait_arg a = { .m = m, .op = op };
    int state = 0;
    VALUE v = rb_protect(um_ssl_lock_wait, (VALUE)&a, &state);
    // Woken otherwise, the fiber may still be queued (um_op_run let go of
    // the record, which nothing has reused yet).
    um_ssl_lock_unqueue(lock, op);
    if (state || v != Qundef) {
      // The turn it may have been given goes to the next one.
      um_ssl_lock_wake_next(m, lock);
      if (state) rb_jump_tag(state);
      return v;
    }
    um_op_release(m, op);
  }
  RB_OBJ_WRITE(holder, &lock->owner, fiber);
  return Qundef;
}

void um_ssl_lock_give(struct um *m, struct um_ssl_lock *lock) {
  lock->owner = Qnil;
  um_ssl_lock_wake_next(m, lock);
}

void um_ssl_lock_free(struct um_ssl_lock *lock) {
  free(lock->waiters);
  lock->waiters = NULL;
  lock->count = lock->cap = 0;
}
