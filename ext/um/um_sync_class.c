// Ruby bindings of UM::Mutex and UM::Queue, and the machine methods that
// use them (#synchronize, #push, #pop, #shift, #unshift).
#include "um.h"
#include "um_sync.h"

static VALUE cMutex;
static VALUE cQueue;
static ID id_machine;

static void mutex_mark(void *ptr) {
  rb_gc_mark_movable(((struct um_mutex *)ptr)->owner);
}

static void mutex_compact(void *ptr) {
  struct um_mutex *mutex = ptr;
  mutex->owner = rb_gc_location(mutex->owner);
}

static size_t mutex_memsize(const void *ptr) {
  return sizeof(struct um_mutex);
}

static const rb_data_type_t mutex_type = {
  .wrap_struct_name = "UringMachine::Mutex",
  .function = { .dmark = mutex_mark, .dfree = RUBY_TYPED_DEFAULT_FREE, .dsize = mutex_memsize, .dcompact = mutex_compact },
  .flags = RUBY_TYPED_WB_PROTECTED,
};

static VALUE mutex_allocate(VALUE klass) {
  struct um_mutex *mutex;
  VALUE obj = TypedData_Make_Struct(klass, struct um_mutex, &mutex_type, mutex);
  mutex->state = 0;
  mutex->owner = Qnil;
  return obj;
}

static struct um_mutex *mutex_get(VALUE obj) {
  if (!rb_typeddata_is_kind_of(obj, &mutex_type))
    rb_raise(rb_eTypeError, "expected a UM::Mutex, not %s", rb_obj_classname(obj));
  return RTYPEDDATA_DATA(obj);
}

/*
 * Whether some fiber holds the mutex.
 *
 * @example
 *   mutex = UM::Mutex.new
 *   mutex.locked?                                    # => false
 *   machine.synchronize(mutex) { mutex.locked? }     # => true
 */
static VALUE mutex_locked_p(VALUE self) {
  return __atomic_load_n(&mutex_get(self)->state, __ATOMIC_RELAXED) ? Qtrue : Qfalse;
}

static void queue_mark(void *ptr) {
  rb_gc_mark_movable(((struct um_queue *)ptr)->items);
}

static void queue_compact(void *ptr) {
  struct um_queue *queue = ptr;
  queue->items = rb_gc_location(queue->items);
}

static size_t queue_memsize(const void *ptr) {
  return sizeof(struct um_queue);
}

static const rb_data_type_t queue_type = {
  .wrap_struct_name = "UringMachine::Queue",
  .function = { .dmark = queue_mark, .dfree = RUBY_TYPED_DEFAULT_FREE, .dsize = queue_memsize, .dcompact = queue_compact },
  .flags = RUBY_TYPED_WB_PROTECTED,
};

static VALUE queue_allocate(VALUE klass) {
  struct um_queue *queue;
  VALUE obj = TypedData_Make_Struct(klass, struct um_queue, &queue_type, queue);
  queue->seq = 0;
  queue->waiters = 0;
  RB_OBJ_WRITE(obj, &queue->items, rb_ary_hidden_new(0));
  return obj;
}

static struct um_queue *queue_get(VALUE obj) {
  if (!rb_typeddata_is_kind_of(obj, &queue_type))
    rb_raise(rb_eTypeError, "expected a UM::Queue, not %s", rb_obj_classname(obj));
  return RTYPEDDATA_DATA(obj);
}

/*
 * Number of items in the queue.
 *
 * @example
 *   q = UM::Queue.new
 *   machine.push(q, :a)
 *   q.count  # => 1 (also #size, #length)
 */
static VALUE queue_count(VALUE self) {
  return LONG2NUM(RARRAY_LEN(queue_get(self)->items));
}

// Queue and mutex operations are thread-safe: called with a machine of
// another thread, they run on the calling thread's own machine.
static struct um *um_sync_machine(VALUE self) {
  struct um *m = um_get_machine_unchecked(self);
  if (m->thread == rb_thread_current() && m->fork_generation == um_fork_generation) return m;
  return um_get_machine(rb_funcall(rb_thread_current(), id_machine, 0));
}

// What #synchronize's ensure needs to unlock.
struct um_sync_ctx {
  VALUE machine;
  VALUE mutex;
  struct um_mutex *mx;
};

static VALUE um_synchronize_unlock(VALUE arg) {
  struct um_sync_ctx *ctx = (struct um_sync_ctx *)arg;
  RB_OBJ_WRITE(ctx->mutex, &ctx->mx->owner, Qnil);
  if (um_mutex_unlock(ctx->mx)) um_mutex_wake(um_sync_machine(ctx->machine), ctx->mx, ctx->mutex);
  return Qnil;
}

/*
 * call-seq: synchronize(mutex) { } -> block value
 *
 * Runs the block holding the UM::Mutex; waits (suspending only the calling
 * fiber) while another fiber, of any thread or machine, holds it. The
 * mutex is released when the block returns or raises. Raises UM::Error on
 * recursive locking.
 *
 * @example
 *   mutex = UM::Mutex.new
 *   count = 0
 *   fibers = 10.times.map { machine.spin { machine.synchronize(mutex) { count += 1 } } }
 *   machine.join(fibers)
 *   count  # => 10
 */
static VALUE um_synchronize_m(VALUE self, VALUE mutex) {
  struct um_mutex *mx = mutex_get(mutex);
  rb_need_block();
  // The machine is needed only to wait: not on the uncontended path.
  if (!um_mutex_trylock(mx)) um_mutex_lock(um_sync_machine(self), mx, mutex);
  RB_OBJ_WRITE(mutex, &mx->owner, rb_fiber_current());
  struct um_sync_ctx ctx = { .machine = self, .mutex = mutex, .mx = mx };
  return rb_ensure(rb_yield, Qnil, um_synchronize_unlock, (VALUE)&ctx);
}

/*
 * Adds a value at the tail of the queue, waking a waiting consumer.
 *
 * @example
 *   q = UM::Queue.new
 *   machine.push(q, :a)
 *   machine.push(q, :b)
 *   machine.shift(q)  # => :a
 */
static VALUE um_push_m(VALUE self, VALUE queue, VALUE value) {
  struct um_queue *q = queue_get(queue);
  return um_queue_push(um_sync_machine(self), q, queue, value);
}

/*
 * Adds a value at the head of the queue, waking a waiting consumer.
 *
 * @example
 *   q = UM::Queue.new
 *   machine.push(q, :a)
 *   machine.unshift(q, :first)
 *   machine.shift(q)  # => :first
 */
static VALUE um_unshift_m(VALUE self, VALUE queue, VALUE value) {
  struct um_queue *q = queue_get(queue);
  return um_queue_unshift(um_sync_machine(self), q, queue, value);
}

/*
 * Removes and returns the value at the tail, waiting while the queue is empty.
 *
 * @example
 *   q = UM::Queue.new
 *   machine.push(q, 1)
 *   machine.push(q, 2)
 *   machine.pop(q)  # => 2
 */
static VALUE um_pop_m(VALUE self, VALUE queue) {
  struct um_queue *q = queue_get(queue);
  return um_queue_take(um_sync_machine(self), q, queue, true);
}

/*
 * Removes and returns the value at the head, waiting while the queue is empty.
 *
 * @example
 *   q = UM::Queue.new
 *   consumer = machine.spin { machine.shift(q) }  # waits while empty
 *   machine.push(q, :job)
 *   machine.join(consumer)  # => :job
 */
static VALUE um_shift_m(VALUE self, VALUE queue) {
  struct um_queue *q = queue_get(queue);
  return um_queue_take(um_sync_machine(self), q, queue, false);
}

void Init_um_sync_class(void) {
  id_machine = rb_intern("machine");

  /*
   * Document-class: UringMachine::Mutex
   *
   * A futex-based mutex, held with UringMachine#synchronize; waiters of any
   * thread or machine suspend only their fiber.
   */
  cMutex = rb_define_class_under(cUM, "Mutex", rb_cObject);
  rb_define_alloc_func(cMutex, mutex_allocate);
  rb_define_method(cMutex, "locked?", mutex_locked_p, 0);

  /*
   * Document-class: UringMachine::Queue
   *
   * A futex-based queue for UringMachine#push, #unshift, #shift and #pop;
   * usable across fibers, threads and machines.
   */
  cQueue = rb_define_class_under(cUM, "Queue", rb_cObject);
  rb_define_alloc_func(cQueue, queue_allocate);
  rb_define_method(cQueue, "count", queue_count, 0);
  rb_define_method(cQueue, "size", queue_count, 0);
  rb_define_method(cQueue, "length", queue_count, 0);

  rb_define_method(cUM, "synchronize", um_synchronize_m, 1);
  rb_define_method(cUM, "push", um_push_m, 2);
  rb_define_method(cUM, "unshift", um_unshift_m, 2);
  rb_define_method(cUM, "pop", um_pop_m, 1);
  rb_define_method(cUM, "shift", um_shift_m, 1);
}
