// select over io_uring: one poll per fd, all submitted together (and a
// timer when there is a timeout). The calling fiber waits until the first of
// them completes, collects every poll that completed by then, and cancels
// the rest. Polls touch no caller memory, so the cancelled ones are not
// waited for: their late completions just free their records.
#include "um.h"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

// Read, write and exceptional conditions, as select(2) sees them. POLLERR
// and POLLHUP are always reported by poll, so an fd that hung up or failed
// is ready in every set it is in.
static const unsigned um_select_masks[3] = { POLLIN, POLLOUT, POLLPRI };

struct um_select_entry {
  int fd;
  struct um_op *op;
};

struct um_select_ctx {
  struct um *m;
  struct um_select_entry *entries; // counts[0] read fds, then write, then except
  unsigned counts[3];
  unsigned total;
  double timeout;         // < 0: none
  unsigned created;       // entries with an op
  struct um_op *timer;
};

// An op the calling fiber waits on, together with the others.
static struct um_op *um_select_op(struct um *m, enum um_op_kind kind, VALUE fiber) {
  struct um_op *op = um_op_new(m, kind, OP_F_HELD | OP_F_WAITING);
  RB_OBJ_WRITE(m->self, &op->fiber, fiber);
  return op;
}

static void um_select_prepare(struct um_select_ctx *ctx) {
  struct um *m = ctx->m;
  VALUE fiber = rb_fiber_current();
  unsigned i = 0;
  for (int set = 0; set < 3; set++) {
    for (unsigned j = 0; j < ctx->counts[set]; j++, i++) {
      struct um_op *op = um_select_op(m, OP_POLL, fiber);
      ctx->entries[i].op = op;
      ctx->created++;
      struct io_uring_sqe *sqe = um_get_sqe(m, op);
      io_uring_prep_poll_add(sqe, ctx->entries[i].fd, um_select_masks[set]);
    }
  }
  if (ctx->timeout >= 0) {
    ctx->timer = um_select_op(m, OP_TIMEOUT, fiber);
    um_timespec_set(&ctx->timer->data.ts, ctx->timeout);
    struct io_uring_sqe *sqe = um_get_sqe(m, ctx->timer);
    io_uring_prep_timeout(sqe, &ctx->timer->data.ts, 0, 0);
  }
}

static bool um_select_owns(struct um_select_ctx *ctx, struct um_op *op) {
  if (op == ctx->timer) return true;
  for (unsigned i = 0; i < ctx->created; i++)
    if (ctx->entries[i].op == op) return true;
  return false;
}

// [r, w, e] of the polls that completed, nil when none did (timeout). A
// failed poll (a bad fd) raises, as IO.select does.
static VALUE um_select_collect(struct um_select_ctx *ctx) {
  for (unsigned i = 0; i < ctx->total; i++) {
    struct um_op *op = ctx->entries[i].op;
    if (!(op->flags & OP_F_COMPLETED)) continue;
    um_raise_on_error(op->res, "select");
    if (op->res & POLLNVAL) rb_syserr_fail(EBADF, "select");
  }

  VALUE sets[3];
  bool any = false;
  unsigned i = 0;
  for (int set = 0; set < 3; set++) {
    sets[set] = rb_ary_new();
    for (unsigned j = 0; j < ctx->counts[set]; j++, i++) {
      if (!(ctx->entries[i].op->flags & OP_F_COMPLETED)) continue;
      rb_ary_push(sets[set], INT2NUM(ctx->entries[i].fd));
      any = true;
    }
  }
  return any ? rb_ary_new_from_values(3, sets) : Qnil;
}

static bool um_select_all_done(struct um_select_ctx *ctx) {
  for (unsigned i = 0; i < ctx->total; i++)
    if (!(ctx->entries[i].op->flags & OP_F_COMPLETED)) return false;
  return true;
}

// The first wake may come before every completion the kernel has was
// processed: polls that became ready just as the timer fired, or more
// completions than the CQ holds (the rest wait in the kernel's overflow
// list). Take them in, a bounded number of rounds.
static void um_select_harvest(struct um_select_ctx *ctx, bool timer_fired) {
  struct um *m = ctx->m;
  for (int round = 0; round < 16 && !um_select_all_done(ctx); round++) {
    bool more = io_uring_cq_ready(&m->ring) || io_uring_cq_has_overflow(&m->ring);
    if (!more && !(timer_fired && round == 0)) break;
    um_reap(m, false);
  }
}

static VALUE um_select_body(VALUE arg) {
  struct um_select_ctx *ctx = (struct um_select_ctx *)arg;
  struct um *m = ctx->m;
  um_select_prepare(ctx);

  VALUE v = um_switch(m);
  struct um_op *by = m->resumed_by;
  // Woken by someone else: the value stands in for the result (as for any
  // other operation), an exception is raised.
  if (!um_select_owns(ctx, by)) return um_raise_if_exception(v);

  um_select_harvest(ctx, by == ctx->timer);
  return um_select_collect(ctx);
}

static VALUE um_select_cleanup(VALUE arg) {
  struct um_select_ctx *ctx = (struct um_select_ctx *)arg;
  for (unsigned i = 0; i < ctx->created; i++) um_op_discard(ctx->m, ctx->entries[i].op);
  if (ctx->timer) um_op_discard(ctx->m, ctx->timer);
  free(ctx->entries);
  return Qnil;
}

// fds holds counts[0] fds to wait for reading, counts[1] for writing and
// counts[2] for exceptional conditions (copied: the caller's array may go
// away while the fiber waits). A negative timeout waits without limit.
VALUE um_select(struct um *m, const int *fds, const unsigned counts[3], double timeout) {
  struct um_select_ctx ctx = {
    .m = m, .counts = { counts[0], counts[1], counts[2] },
    .total = counts[0] + counts[1] + counts[2], .timeout = timeout,
  };
  ctx.entries = malloc(sizeof(struct um_select_entry) * (ctx.total ? ctx.total : 1));
  if (!ctx.entries) rb_raise(rb_eNoMemError, "failed to allocate select operations");
  for (unsigned i = 0; i < ctx.total; i++) {
    ctx.entries[i].fd = fds[i];
    ctx.entries[i].op = NULL;
  }
  return rb_ensure(um_select_body, (VALUE)&ctx, um_select_cleanup, (VALUE)&ctx);
}
