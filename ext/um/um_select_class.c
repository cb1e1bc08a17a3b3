// Ruby binding of #select: argument checks and the method table.
#include "um.h"
#include <limits.h>
#include <math.h>

// Far more than any process can have open; keeps the counts in range.
#define UM_SELECT_MAX_FDS (1L << 24)

static const char *const um_select_set_names[3] = { "rfds", "wfds", "efds" };

// nil or an Array (or something that converts to one) of Integer fds.
static VALUE um_select_set_arg(VALUE v, const char *name) {
  if (NIL_P(v)) return rb_ary_new();
  VALUE ary = rb_check_array_type(v);
  if (NIL_P(ary))
    rb_raise(rb_eTypeError, "%s must be an Array of Integer fds or nil, not %s", name, rb_obj_classname(v));
  return ary;
}

static double um_select_timeout(VALUE v) {
  return NIL_P(v) ? -1 : um_arg_interval(v);
}

/*
 * call-seq: select(rfds, wfds, efds, timeout = nil) -> [r, w, e] or nil
 *
 * Like IO.select, on Integer fds: waits until at least one of the fds in
 * +rfds+ is readable, one in +wfds+ writable, or one in +efds+ has an
 * exceptional condition (POLLPRI), and returns the fds that are, in three
 * Arrays. An fd that hung up or has an error counts as ready. Any of the
 * sets may be nil. Only the calling fiber waits.
 *
 * +timeout+ (seconds) limits the wait; when it passes with nothing ready,
 * returns nil. 0 checks without waiting for readiness; nil waits without
 * limit.
 *
 * Raises Errno::EBADF when an fd is not open, TypeError for an fd that is
 * not an Integer, ArgumentError for a negative timeout.
 *
 * @example
 *   r, w = UM.pipe
 *   machine.write(w, "x")
 *   machine.select([r], [w], [], 1)  # => [[r], [w], []]
 *   machine.read(r, +"", 1)
 *   machine.select([r], [], [], 0.1)  # => nil: nothing came within 0.1 s
 */
static VALUE um_select_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  rb_check_arity(argc, 3, 4);
  double timeout = um_select_timeout(argc > 3 ? argv[3] : Qnil);

  VALUE sets[3];
  long total = 0;
  for (int s = 0; s < 3; s++) {
    sets[s] = um_select_set_arg(argv[s], um_select_set_names[s]);
    total += RARRAY_LEN(sets[s]);
  }
  if (total > UM_SELECT_MAX_FDS) rb_raise(rb_eArgError, "too many fds (%ld)", total);

  VALUE tmp;
  int *fds = ALLOCV_N(int, tmp, total ? total : 1);
  unsigned counts[3];
  long i = 0;
  for (int s = 0; s < 3; s++) {
    long len = RARRAY_LEN(sets[s]);
    for (long j = 0; j < len; j++) {
      VALUE fd = RARRAY_AREF(sets[s], j);
      if (!RB_INTEGER_TYPE_P(fd))
        rb_raise(rb_eTypeError, "fd must be an Integer, not %s", rb_obj_classname(fd));
      fds[i++] = NUM2INT(fd);
    }
    counts[s] = (unsigned)len;
  }

  VALUE ret = um_select(m, fds, counts, timeout);
  ALLOCV_END(tmp);
  RB_GC_GUARD(sets[0]);
  RB_GC_GUARD(sets[1]);
  RB_GC_GUARD(sets[2]);
  return ret;
}

void Init_um_select_class(void) {
  rb_define_method(cUM, "select", um_select_m, -1);
}
