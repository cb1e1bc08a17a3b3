// The body of the fibers a machine spins, and how they end.
//
// Fibers are switched with transfer, and a transferred-to fiber whose block
// returns makes Ruby switch to the end of the thread's resume chain (the
// thread's root fiber, or the fiber it resumed): out of turn, if that fiber
// waits for something. So a finished fiber used to switch away for good
// instead, keeping its stack (and the conservative scan of it at every
// major GC) until the Fiber object was collected: with thousands of short
// fibers, most of the memory of a busy machine.
//
// Now a finished fiber ends for real when the fiber Ruby switches to is the
// machine's main fiber (the one that created it) waiting in this machine's
// switch: Ruby releases the stack to its pool at once, and the main fiber,
// told by um_ending that it was switched to by an end and not woken, goes
// on switching to the next runqueue entry. Otherwise (the main fiber runs
// elsewhere, or was itself spun by a machine, so it is not the end of the
// resume chain) the finished fiber switches away for good as before.
#include "um.h"

// The machine whose fiber just ended, for the fiber Ruby switches to next.
static __thread struct um *um_ending;

static ID id_run_fiber, id_park_fiber, id_um_spun;

// Whether a fiber of the machine that ends now returns to the machine's
// main fiber suspended in its switch.
static bool um_fiber_can_end(struct um *m) {
  return m->main_waiting && !m->main_fiber_spun;
}

bool um_fiber_spun_p(VALUE fiber) {
  return rb_attr_get(fiber, id_um_spun) == Qtrue;
}

bool um_switched_by_end(struct um *m) {
  if (um_ending != m) return false;

  um_ending = NULL;
  return true;
}

// The block of every spun fiber: runs the user's block (UM#run_fiber,
// which records the result and wakes the joiners), then ends the fiber or
// parks it. No Ruby code runs between the decision and the end.
static VALUE um_fiber_body(RB_BLOCK_CALL_FUNC_ARGLIST(start_value, data)) {
  VALUE machine = RARRAY_AREF(data, 0);
  VALUE block = RARRAY_AREF(data, 1);
  VALUE fiber = rb_fiber_current();
  rb_ivar_set(fiber, id_um_spun, Qtrue);
  rb_funcall(machine, id_run_fiber, 3, fiber, block, start_value);

  struct um *m = um_get_machine_unchecked(machine);
  if (!um_fiber_can_end(m)) rb_funcall(machine, id_park_fiber, 0); // never returns
  if (m->profile_mode) um_account_cpu_time(m, fiber);
  um_ending = m;
  RB_GC_GUARD(data);
  return Qnil;
}

/*
 * call-seq: fiber_body(block) -> Proc
 *
 * Private: the Proc a spun fiber runs (see UM#new_fiber).
 */
static VALUE um_fiber_body_m(VALUE self, VALUE block) {
  return rb_proc_new(um_fiber_body, rb_ary_new_from_args(2, self, block));
}

void Init_um_fiber(void) {
  id_run_fiber = rb_intern("run_fiber");
  id_park_fiber = rb_intern("park_fiber");
  id_um_spun = rb_intern("@um_spun");
  rb_define_private_method(cUM, "fiber_body", um_fiber_body_m, 1);
}
