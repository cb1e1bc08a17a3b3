// What UM::FiberScheduler (lib/uringmachine/fiber_scheduler.rb) needs from
// C: Ruby's read buffer of an IO, which no Ruby method shows.
#include "um.h"
#include <ruby/io.h>

/*
 * call-seq: read_buffered?(io) -> true or false
 *
 * Private: whether Ruby already holds data read from the IO in its buffer
 * (IO.select must count such an IO as readable without asking the kernel).
 */
static VALUE um_fiber_scheduler_read_buffered_p(VALUE self, VALUE io) {
  io = rb_io_get_io(io);
  rb_io_t *fptr;
  GetOpenFile(io, fptr);
  return rb_io_read_pending(fptr) ? Qtrue : Qfalse;
}

void Init_um_fiber_scheduler_class(void) {
  VALUE cUM = rb_const_get(rb_cObject, rb_intern("UringMachine"));
  VALUE cScheduler = rb_define_class_under(cUM, "FiberScheduler", rb_cObject);
  rb_define_private_method(cScheduler, "read_buffered?", um_fiber_scheduler_read_buffered_p, 1);
}
