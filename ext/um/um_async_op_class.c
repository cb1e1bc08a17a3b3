// UM::AsyncOp: an operation not tied to a fiber (#prep_timeout).
#include "um.h"
#include "um_async_op.h"
#include <errno.h>

static VALUE cAsyncOp;
static VALUE sym_timeout;

struct um_async_op {
  VALUE machine;
  struct um *m;     // holds a reference: the record lives in its pool
  struct um_op *op;
  struct um_async_waiters waiters;  // fibers in #await
};

static void async_op_mark(void *ptr) {
  struct um_async_op *a = ptr;
  rb_gc_mark_movable(a->machine);
}

static void async_op_compact(void *ptr) {
  struct um_async_op *a = ptr;
  a->machine = rb_gc_location(a->machine);
}

static void async_op_free(void *ptr) {
  struct um_async_op *a = ptr;
  if (a->op) {
    // If the kernel still holds the record, its last CQE frees it.
    um_op_release(a->m, a->op);
  }
  if (a->m) um_unref(a->m);
  um_async_waiters_free(&a->waiters);
  free(a);
}

static size_t async_op_memsize(const void *ptr) {
  const struct um_async_op *a = ptr;
  return sizeof(struct um_async_op) + a->waiters.cap * sizeof(struct um_op *);
}

static const rb_data_type_t async_op_type = {
  .wrap_struct_name = "UringMachine::AsyncOp",
  .function = { .dmark = async_op_mark, .dfree = async_op_free, .dsize = async_op_memsize, .dcompact = async_op_compact },
  .flags = RUBY_TYPED_WB_PROTECTED,
};

static struct um_async_op *async_op_get(VALUE self) {
  struct um_async_op *a;
  TypedData_Get_Struct(self, struct um_async_op, &async_op_type, a);
  return a;
}

/*
 * call-seq: prep_timeout(seconds) -> UM::AsyncOp
 *
 * Starts a timer not tied to a fiber; wait for it with AsyncOp#await.
 *
 * @example
 *   op = machine.prep_timeout(0.5)
 *   op.done?  # => false
 *   op.await  # => -UM::ETIME after 0.5 s
 */
static VALUE um_prep_timeout_m(VALUE self, VALUE seconds) {
  struct um *m = um_get_machine(self);
  double interval = um_arg_interval(seconds);

  struct um_async_op *a = calloc(1, sizeof(struct um_async_op));
  if (!a) rb_raise(rb_eNoMemError, "failed to allocate an AsyncOp");
  a->machine = Qnil;
  VALUE obj = TypedData_Wrap_Struct(cAsyncOp, &async_op_type, a);
  RB_OBJ_WRITE(obj, &a->machine, self);
  a->m = m;
  m->refs++;
  a->op = um_prep_timeout(m, interval);
  return obj;
}

/*
 * call-seq: await -> Integer
 *
 * Waits for the operation to finish (any number of fibers may wait at once)
 * and returns its result: -ETIME for an expired timer. Raises
 * Errno::ECANCELED if the operation was cancelled. A timeout or exception
 * that interrupts the wait cancels the operation.
 *
 * @example
 *   op = machine.prep_timeout(0.01)
 *   op.await == -UM::ETIME  # => true
 */
static VALUE async_op_await(VALUE self) {
  struct um_async_op *a = async_op_get(self);
  um_check_owner(a->m);
  VALUE v = um_async_op_await(a->m, a->op, &a->waiters);
  RB_GC_GUARD(self);
  if (v != Qundef) return v;
  if (a->op->res == -ECANCELED) rb_syserr_fail(ECANCELED, "AsyncOp#await");
  return INT2NUM(a->op->res);
}

/*
 * Cancels the operation if it is still running; its awaiters raise Errno::ECANCELED.
 *
 * @example
 *   op = machine.prep_timeout(10)
 *   op.cancel
 *   op.await  # raises Errno::ECANCELED
 */
static VALUE async_op_cancel(VALUE self) {
  struct um_async_op *a = async_op_get(self);
  um_check_owner(a->m);
  um_op_cancel(a->m, a->op);
  return self;
}

/*
 * Whether the operation finished.
 *
 * @example
 *   op = machine.prep_timeout(0.01)
 *   op.done?  # => false
 *   op.await
 *   op.done?  # => true
 */
static VALUE async_op_done_p(VALUE self) {
  return (async_op_get(self)->op->flags & OP_F_COMPLETED) ? Qtrue : Qfalse;
}

/*
 * Whether the operation finished because it was cancelled.
 *
 * @example
 *   op = machine.prep_timeout(10)
 *   op.cancel
 *   op.await rescue nil
 *   op.cancelled?  # => true
 */
static VALUE async_op_cancelled_p(VALUE self) {
  struct um_op *op = async_op_get(self)->op;
  return (op->flags & OP_F_COMPLETED) && op->res == -ECANCELED ? Qtrue : Qfalse;
}

/*
 * The result (an Integer, negative errno on failure), or nil while running.
 *
 * @example
 *   op = machine.prep_timeout(0.01)
 *   op.result  # => nil
 *   op.await
 *   op.result  # => -62 (-ETIME)
 */
static VALUE async_op_result(VALUE self) {
  struct um_op *op = async_op_get(self)->op;
  return (op->flags & OP_F_COMPLETED) ? INT2NUM(op->res) : Qnil;
}

/*
 * The kind of operation: :timeout.
 *
 * @example
 *   machine.prep_timeout(1).kind  # => :timeout
 */
static VALUE async_op_kind(VALUE self) {
  return sym_timeout;
}

void Init_um_async_op(void) {
  sym_timeout = ID2SYM(rb_intern("timeout"));
  /*
   * Document-class: UringMachine::AsyncOp
   *
   * An operation not tied to a fiber (a timer from UringMachine#prep_timeout):
   * any fiber may await it, cancel it or look at its result.
   */
  cAsyncOp = rb_define_class_under(cUM, "AsyncOp", rb_cObject);
  rb_undef_alloc_func(cAsyncOp);
  rb_define_method(cUM, "prep_timeout", um_prep_timeout_m, 1);
  rb_define_method(cAsyncOp, "await", async_op_await, 0);
  rb_define_method(cAsyncOp, "join", async_op_await, 0);
  rb_define_method(cAsyncOp, "cancel", async_op_cancel, 0);
  rb_define_method(cAsyncOp, "done?", async_op_done_p, 0);
  rb_define_method(cAsyncOp, "cancelled?", async_op_cancelled_p, 0);
  rb_define_method(cAsyncOp, "result", async_op_result, 0);
  rb_define_method(cAsyncOp, "kind", async_op_kind, 0);
}
