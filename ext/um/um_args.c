// Argument checks shared by the binding files: the errors a caller sees
// for a wrong type or value, worded the same everywhere.
#include "um.h"
#include <limits.h>
#include <math.h>
#include <ruby/io/buffer.h>

// Largest count one read or write transfers, as in Linux's MAX_RW_COUNT.
#define UM_MAX_RW_COUNT 0x7ffff000L

int um_arg_fd(VALUE v) {
  if (!RB_INTEGER_TYPE_P(v))
    rb_raise(rb_eTypeError, "fd must be an Integer, not %s", rb_obj_classname(v));
  return NUM2INT(v);
}

long um_arg_long(VALUE v, const char *name) {
  if (!RB_INTEGER_TYPE_P(v))
    rb_raise(rb_eTypeError, "%s must be an Integer, not %s", name, rb_obj_classname(v));
  return NUM2LONG(v);
}

int um_arg_int(VALUE v, const char *name) {
  if (!RB_INTEGER_TYPE_P(v))
    rb_raise(rb_eTypeError, "%s must be an Integer, not %s", name, rb_obj_classname(v));
  return NUM2INT(v);
}

// nil: -1 (the default); else a length >= 0, at most MAX_RW_COUNT.
ssize_t um_arg_len(VALUE v, const char *name) {
  if (NIL_P(v)) return -1;
  long len = um_arg_long(v, name);
  if (len < 0) rb_raise(rb_eArgError, "negative %s: %ld", name, len);
  return len > UM_MAX_RW_COUNT ? UM_MAX_RW_COUNT : len;
}

// A length to write: nil or -1 the whole buffer (1.0: -1 lets a file
// offset follow positionally); else a length >= 0.
ssize_t um_arg_write_len(VALUE v, const char *name) {
  if (NIL_P(v)) return -1;
  long len = um_arg_long(v, name);
  if (len == -1) return -1;
  if (len < 0) rb_raise(rb_eArgError, "negative %s: %ld (-1 or nil: the whole buffer)", name, len);
  return len > UM_MAX_RW_COUNT ? UM_MAX_RW_COUNT : len;
}

// nil or -1: the current file position; else an offset >= 0.
int64_t um_arg_file_offset(VALUE v) {
  if (NIL_P(v)) return -1;
  if (!RB_INTEGER_TYPE_P(v))
    rb_raise(rb_eTypeError, "file offset must be an Integer, not %s", rb_obj_classname(v));
  int64_t ofs = NUM2LL(v);
  if (ofs < -1) rb_raise(rb_eArgError, "file offset must be >= 0, or -1 for the current position (got %lld)", (long long)ofs);
  return ofs;
}

// Seconds, as Kernel#sleep takes them.
double um_arg_interval(VALUE v) {
  if (!rb_obj_is_kind_of(v, rb_cNumeric))
    rb_raise(rb_eTypeError, "can't convert %s into time interval", rb_obj_classname(v));
  double d = NUM2DBL(v);
  if (isnan(d)) rb_raise(rb_eArgError, "time interval must be a number (got NaN)");
  if (d < 0) rb_raise(rb_eArgError, "time interval must not be negative");
  if (d > (double)LLONG_MAX / 2) d = (double)LLONG_MAX / 2;
  return d;
}

void um_arg_buffer(VALUE buffer) {
  if (!RB_TYPE_P(buffer, T_STRING) && !rb_obj_is_kind_of(buffer, rb_cIOBuffer))
    rb_raise(rb_eTypeError, "buffer must be a String or an IO::Buffer, not %s", rb_obj_classname(buffer));
}
