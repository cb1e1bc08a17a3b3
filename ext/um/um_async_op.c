// Awaiting an operation held by a UM::AsyncOp rather than by a fiber.
//
// The op's own completion can resume one fiber only (op->fiber): the first
// awaiter. Every awaiter also has its own runqueue entry; whoever sees the
// op completed puts all of them on the runqueue and drops the op's entry,
// so no fiber is left waiting and none is resumed later by a stale entry.
// An awaiter woken early (timeout, exception, terminate) cancels the op, as
// an early wake cancels any other operation; the remaining awaiters then see
// the cancellation. If the first awaiter leaves before the op completes,
// the completion is redirected to the next one.
#include "um.h"
#include "um_async_op.h"
#include <string.h>

static void um_async_waiters_reserve(struct um_async_waiters *w) {
  if (w->count < w->cap) return;

  unsigned cap = w->cap ? w->cap * 2 : 4;
  struct um_op **items = realloc(w->items, cap * sizeof(struct um_op *));
  if (!items) rb_raise(rb_eNoMemError, "failed to allocate AsyncOp waiters");
  w->items = items;
  w->cap = cap;
}

static void um_async_waiters_remove(struct um_async_waiters *w, struct um_op *entry) {
  for (unsigned i = 0; i < w->count; i++) {
    if (w->items[i] != entry) continue;
    memmove(&w->items[i], &w->items[i + 1], (w->count - i - 1) * sizeof(struct um_op *));
    w->count--;
    return;
  }
}

void um_async_waiters_free(struct um_async_waiters *w) {
  free(w->items);
  w->items = NULL;
  w->count = w->cap = 0;
}

// The op completed: every awaiter goes on the runqueue.
static void um_async_wake_all(struct um *m, struct um_op *op, struct um_async_waiters *w) {
  op->flags &= ~OP_F_WAITING;
  um_runqueue_remove(m, op);
  for (unsigned i = 0; i < w->count; i++)
    if (!(w->items[i]->flags & OP_F_RUNQUEUE)) um_runqueue_push(m, w->items[i]);
}

static VALUE um_async_switch(VALUE arg) {
  return um_switch((struct um *)arg);
}

// Suspends the calling fiber until the op completes. Returns Qundef when it
// did (the caller reads op->res). Woken otherwise, the fiber cancels the op
// and raises the exception it was woken with, or returns the value.
VALUE um_async_op_await(struct um *m, struct um_op *op, struct um_async_waiters *w) {
  if (op->flags & OP_F_COMPLETED) return Qundef;

  VALUE fiber = rb_fiber_current();
  um_async_waiters_reserve(w);
  struct um_op *entry = um_op_new(m, OP_SCHEDULE, OP_F_HELD);
  RB_OBJ_WRITE(m->self, &entry->fiber, fiber);
  w->items[w->count++] = entry;
  if (!(op->flags & OP_F_WAITING)) {
    op->flags |= OP_F_WAITING;
    RB_OBJ_WRITE(m->self, &op->fiber, fiber);
  }

  int state = 0;
  VALUE v = rb_protect(um_async_switch, (VALUE)m, &state);
  VALUE errinfo = state ? um_errinfo_take() : Qnil;
  bool completed = !state && (m->resumed_by == op || m->resumed_by == entry);

  um_async_waiters_remove(w, entry);
  if (op->flags & OP_F_COMPLETED)
    um_async_wake_all(m, op, w);
  else if ((op->flags & OP_F_WAITING) && op->fiber == fiber) {
    if (w->count) RB_OBJ_WRITE(m->self, &op->fiber, w->items[0]->fiber);
    else op->flags &= ~OP_F_WAITING;
  }
  um_op_release(m, entry);
  if (completed) return Qundef;

  um_op_cancel(m, op);
  if (state) um_errinfo_rethrow(state, errinfo);
  RB_GC_GUARD(errinfo);
  return um_raise_if_exception(v);
}
