// The runqueue, fiber switching, fairness, timers and per-fiber CPU time.
//
// Fibers are switched with transfer semantics: the fiber that suspends picks
// the next runqueue entry and transfers to its fiber; when the runqueue is
// empty it waits in the kernel for completions, which put their ops on the
// runqueue. m->resumed_by tells the resumed fiber which entry woke it.
#include "um.h"
#include <errno.h>
#include <math.h>
#include <time.h>

static ID id_cpu_time;

double um_monotonic_time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

double um_thread_cpu_time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

void um_timespec_set(struct __kernel_timespec *ts, double seconds) {
  double whole = floor(seconds);
  ts->tv_sec = (long long)whole;
  ts->tv_nsec = (long long)((seconds - whole) * 1e9);
}

// Links the op at the tail of the runqueue, or at its head.
static void um_runqueue_insert(struct um *m, struct um_op *op, bool head) {
  assert(!(op->flags & OP_F_RUNQUEUE));
  op->flags |= OP_F_RUNQUEUE;
  op->prev = head ? NULL : m->runqueue_tail;
  op->next = head ? m->runqueue_head : NULL;
  if (op->prev) op->prev->next = op;
  else m->runqueue_head = op;
  if (op->next) op->next->prev = op;
  else m->runqueue_tail = op;
  m->metrics.ops_runqueue++;
}

void um_runqueue_push(struct um *m, struct um_op *op) {
  um_runqueue_insert(m, op, false);
}

void um_runqueue_unshift(struct um *m, struct um_op *op) {
  um_runqueue_insert(m, op, true);
}

void um_runqueue_remove(struct um *m, struct um_op *op) {
  if (!(op->flags & OP_F_RUNQUEUE)) return;

  if (op->prev) op->prev->next = op->next;
  else m->runqueue_head = op->next;
  if (op->next) op->next->prev = op->prev;
  else m->runqueue_tail = op->prev;
  op->prev = op->next = NULL;
  op->flags &= ~OP_F_RUNQUEUE;
  m->metrics.ops_runqueue--;
}

struct um_op *um_runqueue_shift(struct um *m) {
  struct um_op *op = m->runqueue_head;
  if (op) um_runqueue_remove(m, op);
  return op;
}

void um_account_cpu_time(struct um *m, VALUE current) {
  double now = um_thread_cpu_time();
  VALUE acc = rb_ivar_get(current, id_cpu_time);
  double total = (NIL_P(acc) ? 0.0 : NUM2DBL(acc)) + (now - m->last_cpu_time);
  rb_ivar_set(current, id_cpu_time, DBL2NUM(total));
  m->last_cpu_time = now;
}

void um_set_profile_mode(struct um *m, bool on) {
  m->profile_mode = on;
  if (on) m->last_cpu_time = um_thread_cpu_time();
}

double um_fiber_cpu_time(struct um *m, VALUE fiber) {
  VALUE acc = rb_ivar_get(fiber, id_cpu_time);
  double total = NIL_P(acc) ? 0.0 : NUM2DBL(acc);
  if (m->profile_mode && fiber == rb_fiber_current())
    total += um_thread_cpu_time() - m->last_cpu_time;
  return total;
}

static VALUE um_transfer_protected(VALUE arg) {
  VALUE *args = (VALUE *)arg;
  return rb_fiber_transfer(args[0], 1, &args[1]);
}

// Transfers to the fiber; returns the value the current fiber is switched
// back to with. While the main fiber is away, m->main_waiting says so
// (um_fiber.c), cleared however it comes back (an interrupt raises here).
static VALUE um_transfer_to(struct um *m, VALUE current, VALUE fiber, VALUE value) {
  if (current != m->main_fiber) {
    VALUE ret = rb_fiber_transfer(fiber, 1, &value);
    RB_GC_GUARD(fiber);
    RB_GC_GUARD(value);
    return ret;
  }

  VALUE args[2] = { fiber, value };
  int state = 0;
  m->main_waiting = true;
  VALUE ret = rb_protect(um_transfer_protected, (VALUE)args, &state);
  m->main_waiting = false;
  if (state) rb_jump_tag(state);
  RB_GC_GUARD(args[0]);
  RB_GC_GUARD(args[1]);
  return ret;
}

// Runs the next runqueue entry; returns when someone transfers back to the
// calling fiber, with the value it was resumed with.
VALUE um_switch(struct um *m) {
  while (true) {
    if (m->runqueue_head) {
      if (++m->switch_count >= UM_FAIRNESS_SWITCHES) {
        m->switch_count = 0;
        um_reap(m, false);
      }
      struct um_op *op = um_runqueue_shift(m);
      VALUE fiber = op->fiber;
      VALUE value = op->value;
      um_op_free_unused(m, op);
      m->resumed_by = op;

      if (!RTEST(rb_fiber_alive_p(fiber))) continue;

      m->metrics.total_switches++;
      m->direct_streak = 0;
      VALUE current = rb_fiber_current();
      if (m->profile_mode) um_account_cpu_time(m, current);
      if (fiber == current) return value;

      VALUE ret = um_transfer_to(m, current, fiber, value);
      if (um_switched_by_end(m)) continue;
      return ret;
    }
    m->switch_count = 0;
    um_reap(m, true);
  }
}

VALUE um_schedule(struct um *m, VALUE fiber, VALUE value) {
  struct um_op *op = um_op_new(m, OP_SCHEDULE, OP_F_TRANSIENT);
  RB_OBJ_WRITE(m->self, &op->fiber, fiber);
  RB_OBJ_WRITE(m->self, &op->value, value);
  um_runqueue_push(m, op);
  return Qnil;
}

// Runs the fiber at once; the calling fiber goes to the front of the
// runqueue, so it continues as soon as that fiber suspends (as with
// Fiber#resume, but with transfer semantics).
VALUE um_transfer_now(struct um *m, VALUE fiber, VALUE value) {
  VALUE current = rb_fiber_current();
  if (fiber == current) return value;

  struct um_op *op = um_op_new(m, OP_SCHEDULE, OP_F_TRANSIENT);
  RB_OBJ_WRITE(m->self, &op->fiber, current);
  um_runqueue_unshift(m, op);
  m->metrics.total_switches++;
  m->direct_streak = 0;
  if (m->profile_mode) um_account_cpu_time(m, current);
  VALUE ret = um_transfer_to(m, current, fiber, value);
  // The fiber ended at once and Ruby switched back here: the calling
  // fiber's entry heads the runqueue.
  if (um_switched_by_end(m)) ret = um_switch(m);
  return um_raise_if_exception(ret);
}

VALUE um_snooze(struct um *m) {
  struct um_op *op = um_op_new(m, OP_SCHEDULE, 0);
  RB_OBJ_WRITE(m->self, &op->fiber, rb_fiber_current());
  um_runqueue_push(m, op);
  VALUE ret = um_op_run(m, op);
  if (ret != Qundef) return ret;

  um_op_release(m, op);
  return Qnil;
}

VALUE um_yield(struct um *m) {
  return um_raise_if_exception(um_switch(m));
}

// The fibers suspended on an operation of the machine (an op a fiber waits
// for), each once: an Array, made a Set by the Ruby side.
VALUE um_pending_fibers(struct um *m) {
  VALUE list = rb_ary_new();
  for (struct um_op *op = m->live_ops; op; op = op->live_next) {
    if (!(op->flags & OP_F_WAITING) || !(op->flags & OP_F_IN_KERNEL) || NIL_P(op->fiber)) continue;
    // The timer of a #timeout block: its fiber runs, it does not wait.
    if (op->kind == OP_TIMEOUT && !NIL_P(op->value)) continue;
    if (!RTEST(rb_fiber_alive_p(op->fiber))) continue;
    rb_ary_push(list, op->fiber);
  }
  return list;
}

static struct um_op *um_timeout_op(struct um *m, double seconds, unsigned flags) {
  struct um_op *op = um_op_new(m, OP_TIMEOUT, flags);
  um_timespec_set(&op->data.ts, seconds);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  io_uring_prep_timeout(sqe, &op->data.ts, 0, 0);
  return op;
}

double um_sleep(struct um *m, double seconds, bool forever) {
  double t0 = um_monotonic_time();
  if (forever)
    um_yield(m);
  else if (seconds == 0)
    um_snooze(m);
  else {
    struct um_op *op = um_timeout_op(m, seconds, 0);
    int32_t res;
    if (um_op_await(m, op, &res) == Qundef && res < 0 && res != -ETIME)
      um_raise_on_error(res, "sleep");
  }
  return um_monotonic_time() - t0;
}

struct um_timeout_ctx {
  struct um *m;
  struct um_op *op;
};

// Releasing the op also drops an expiry already on the runqueue: no late
// raise after the block returned.
static VALUE um_timer_ensure(VALUE arg) {
  struct um_timeout_ctx *ctx = (struct um_timeout_ctx *)arg;
  um_op_discard(ctx->m, ctx->op);
  return Qnil;
}

VALUE um_timeout(struct um *m, double seconds, VALUE exception) {
  struct um_op *op = um_timeout_op(m, seconds, OP_F_HELD | OP_F_WAITING);
  RB_OBJ_WRITE(m->self, &op->fiber, rb_fiber_current());
  RB_OBJ_WRITE(m->self, &op->value, exception);

  struct um_timeout_ctx ctx = { .m = m, .op = op };
  return rb_ensure(rb_yield, Qnil, um_timer_ensure, (VALUE)&ctx);
}

static VALUE um_periodically_loop(VALUE arg) {
  struct um_timeout_ctx *ctx = (struct um_timeout_ctx *)arg;
  struct um *m = ctx->m;
  struct um_op *op = ctx->op;
  while (true) {
    if (!op->multishot_count && um_op_wait(m, op) != Qundef) return Qnil;
    op->multishot_count = 0; // ticks missed while the block ran are merged
    if (!(op->flags & OP_F_IN_KERNEL)) {
      int32_t res = op->res;
      if (res < 0 && res != -ETIME) um_raise_on_error(res, "periodically");
      return Qnil;
    }
    rb_yield(Qnil);
  }
}

VALUE um_periodically(struct um *m, double interval) {
  um_require_kernel(604, "periodically (multishot timeout)");

  struct um_op *op = um_op_new(m, OP_MULTISHOT_TIMEOUT, OP_F_HELD | OP_F_MULTISHOT);
  um_timespec_set(&op->data.ts, interval);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  io_uring_prep_timeout(sqe, &op->data.ts, 0, IORING_TIMEOUT_MULTISHOT);

  struct um_timeout_ctx ctx = { .m = m, .op = op };
  return rb_ensure(um_periodically_loop, (VALUE)&ctx, um_timer_ensure, (VALUE)&ctx);
}

struct um_op *um_prep_timeout(struct um *m, double seconds) {
  return um_timeout_op(m, seconds, OP_F_HELD);
}

void Init_um_sched(void) {
  // No leading @: invisible to Ruby code.
  id_cpu_time = rb_intern("__um_cpu_time");
}
