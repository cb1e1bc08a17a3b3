// RESP, the Redis protocol (RESP2 and RESP3 values), over a UM::IO: a
// decoder that reads one value through the UM::IO's buffered reads, and an
// encoder that appends a value to a String. The mapping of types follows
// the UringMachine 1.0 gem (see UM::IO#resp_read and UM::IO.resp_encode).
#include "um.h"
#include "um_io.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ruby/encoding.h>

// Deeper nesting is refused: the decoder and encoder recurse on the C stack.
#define UM_RESP_MAX_DEPTH 512

static VALUE um_resp_error_class(void) {
  static VALUE klass = Qnil;
  if (NIL_P(klass)) {
    klass = rb_path2class("UringMachine::IO::RESPError");
    rb_gc_register_address(&klass);
  }
  return klass;
}

NORETURN(static void um_resp_protocol_error(const char *what, VALUE line));
static void um_resp_protocol_error(const char *what, VALUE line) {
  if (NIL_P(line)) rb_raise(eUMError, "RESP protocol error: %s", what);
  rb_raise(eUMError, "RESP protocol error: %s in %" PRIsVALUE, what, rb_str_inspect(line));
}

NORETURN(static void um_resp_eof(void));
static void um_resp_eof(void) {
  rb_raise(rb_eEOFError, "the stream ended inside a RESP value");
}

// One "\r\n"-terminated line, without the terminator. nil only at a clean
// EOF before the first byte of a top-level value.
static VALUE um_resp_line(struct um_io *io, bool top) {
  VALUE line = um_io_read_to_delim(io, "\r\n", 2, 0, false);
  if (NIL_P(line)) {
    if (top && !io->pending) return Qnil;
    um_resp_eof();
  }
  if (RSTRING_LEN(line) == 0) um_resp_protocol_error("empty line", Qnil);
  return line;
}

// Whether ptr[0, len) is an optionally signed run of decimal digits.
static bool um_resp_decimal_p(const char *ptr, long len) {
  long i = (len > 0 && (ptr[0] == '-' || ptr[0] == '+')) ? 1 : 0;
  if (i == len) return false;
  for (; i < len; i++)
    if (ptr[i] < '0' || ptr[i] > '9') return false;
  return true;
}

// The length after the type byte: -1 (RESP2's null) or more.
static long um_resp_length(VALUE line) {
  const char *ptr = RSTRING_PTR(line) + 1;
  long len = RSTRING_LEN(line) - 1;
  if (!um_resp_decimal_p(ptr, len) || len > 18) um_resp_protocol_error("bad length", line);
  long n = strtol(ptr, NULL, 10);
  if (n < -1) um_resp_protocol_error("bad length", line);
  return n;
}

static VALUE um_resp_integer(VALUE line) {
  const char *ptr = RSTRING_PTR(line) + 1;
  long len = RSTRING_LEN(line) - 1;
  if (!um_resp_decimal_p(ptr, len)) um_resp_protocol_error("bad integer", line);
  return rb_str_to_inum(rb_str_subseq(line, 1, len), 10, TRUE);
}

static VALUE um_resp_double(VALUE line) {
  const char *ptr = RSTRING_PTR(line) + 1; // NUL-terminated: a String made by um_io_take
  char *end = NULL;
  errno = 0;
  double d = strtod(ptr, &end);
  if (end == ptr || end != RSTRING_PTR(line) + RSTRING_LEN(line)) um_resp_protocol_error("bad double", line);
  return DBL2NUM(d);
}

static VALUE um_resp_utf8(VALUE str) {
  rb_enc_associate(str, rb_utf8_encoding());
  return str;
}

// `len` bytes followed by "\r\n".
static VALUE um_resp_blob(struct um_io *io, long len) {
  VALUE str = len ? um_io_read(io, len) : rb_str_new(NULL, 0);
  if (NIL_P(str)) um_resp_eof();
  VALUE crlf = um_io_read(io, 2);
  if (NIL_P(crlf)) um_resp_eof();
  if (memcmp(RSTRING_PTR(crlf), "\r\n", 2) != 0) um_resp_protocol_error("blob not followed by CRLF", Qnil);
  return str;
}

static VALUE um_resp_value(struct um_io *io, int depth, bool top);

static VALUE um_resp_array(struct um_io *io, long len, int depth) {
  VALUE ary = rb_ary_new_capa(len < 64 ? len : 64);
  for (long i = 0; i < len; i++) rb_ary_push(ary, um_resp_value(io, depth + 1, false));
  return ary;
}

static VALUE um_resp_map(struct um_io *io, long len, int depth) {
  VALUE hash = rb_hash_new();
  for (long i = 0; i < len; i++) {
    VALUE key = um_resp_value(io, depth + 1, false);
    VALUE value = um_resp_value(io, depth + 1, false);
    rb_hash_aset(hash, key, value);
  }
  return hash;
}

static VALUE um_resp_error(VALUE message) {
  return rb_class_new_instance(1, &message, um_resp_error_class());
}

static VALUE um_resp_value(struct um_io *io, int depth, bool top) {
  if (depth > UM_RESP_MAX_DEPTH) um_resp_protocol_error("value nested too deeply", Qnil);
  VALUE line = um_resp_line(io, top);
  if (NIL_P(line)) return Qnil;
  const char *ptr = RSTRING_PTR(line);
  long n;
  switch (ptr[0]) {
    case '+': return um_resp_utf8(rb_str_subseq(line, 1, RSTRING_LEN(line) - 1));
    case '-': return um_resp_error(um_resp_utf8(rb_str_subseq(line, 1, RSTRING_LEN(line) - 1)));
    case ':':
    case '(': return um_resp_integer(line);
    case ',': return um_resp_double(line);
    case '_':
      if (RSTRING_LEN(line) != 1) um_resp_protocol_error("bad null", line);
      return Qnil;
    case '#':
      if (RSTRING_LEN(line) != 2 || (ptr[1] != 't' && ptr[1] != 'f')) um_resp_protocol_error("bad boolean", line);
      return ptr[1] == 't' ? Qtrue : Qfalse;
    case '$':
      n = um_resp_length(line);
      return n < 0 ? Qnil : um_resp_utf8(um_resp_blob(io, n));
    case '!':
      n = um_resp_length(line);
      if (n < 0) um_resp_protocol_error("bad length", line);
      return um_resp_error(um_resp_utf8(um_resp_blob(io, n)));
    case '=': {
      n = um_resp_length(line);
      VALUE blob = n < 0 ? Qnil : um_resp_blob(io, n);
      // "txt:" or "mkd:" comes first: the text is what follows.
      if (NIL_P(blob) || RSTRING_LEN(blob) < 4 || RSTRING_PTR(blob)[3] != ':')
        um_resp_protocol_error("bad verbatim string", line);
      return um_resp_utf8(rb_str_subseq(blob, 4, RSTRING_LEN(blob) - 4));
    }
    case '*':
    case '~':
    case '>':
      n = um_resp_length(line);
      return n < 0 ? Qnil : um_resp_array(io, n, depth);
    case '%':
      n = um_resp_length(line);
      if (n < 0) um_resp_protocol_error("bad length", line);
      return um_resp_map(io, n, depth);
    case '|':
      // Attributes annotate the value that follows: read and dropped.
      n = um_resp_length(line);
      if (n < 0) um_resp_protocol_error("bad length", line);
      um_resp_map(io, n, depth);
      return um_resp_value(io, depth + 1, false);
    default:
      um_resp_protocol_error("unknown type", line);
  }
}

// One value; nil at EOF.
VALUE um_resp_read(struct um_io *io) {
  return um_resp_value(io, 0, true);
}

// Encoder

static void um_resp_cat_header(VALUE str, char type, long long n) {
  char tmp[32];
  int len = snprintf(tmp, sizeof(tmp), "%c%lld\r\n", type, n);
  rb_str_cat(str, tmp, len);
}

static void um_resp_cat_bulk(VALUE str, VALUE s) {
  um_resp_cat_header(str, '$', RSTRING_LEN(s));
  rb_str_cat(str, RSTRING_PTR(s), RSTRING_LEN(s));
  rb_str_cat(str, "\r\n", 2);
  RB_GC_GUARD(s);
}

// The shortest of %.15g .. %.17g that reads back as the same double.
static void um_resp_cat_double(VALUE str, double d) {
  if (isnan(d)) { rb_str_cat_cstr(str, ",nan\r\n"); return; }
  if (isinf(d)) { rb_str_cat_cstr(str, d > 0 ? ",inf\r\n" : ",-inf\r\n"); return; }
  char tmp[40];
  for (int precision = 15; precision <= 17; precision++) {
    snprintf(tmp, sizeof(tmp), ",%.*g\r\n", precision, d);
    if (strtod(tmp + 1, NULL) == d) break;
  }
  rb_str_cat_cstr(str, tmp);
}

static void um_resp_cat_integer(VALUE str, VALUE obj) {
  if (FIXNUM_P(obj)) {
    um_resp_cat_header(str, ':', FIX2LONG(obj));
    return;
  }
  int nlz = 0;
  size_t bytes = rb_absint_size(obj, &nlz);
  if (bytes < 8 || (bytes == 8 && nlz > 0)) {
    um_resp_cat_header(str, ':', NUM2LL(obj));
    return;
  }
  // Beyond 64 bits: RESP3's big number.
  VALUE digits = rb_big2str(obj, 10);
  rb_str_cat(str, "(", 1);
  rb_str_cat(str, RSTRING_PTR(digits), RSTRING_LEN(digits));
  rb_str_cat(str, "\r\n", 2);
  RB_GC_GUARD(digits);
}

static void um_resp_encode_value(VALUE str, VALUE obj, int depth);

struct um_resp_hash_ctx {
  VALUE str;
  int depth;
};

static int um_resp_encode_pair(VALUE key, VALUE value, VALUE arg) {
  struct um_resp_hash_ctx *ctx = (struct um_resp_hash_ctx *)arg;
  um_resp_encode_value(ctx->str, key, ctx->depth + 1);
  um_resp_encode_value(ctx->str, value, ctx->depth + 1);
  return ST_CONTINUE;
}

static void um_resp_encode_value(VALUE str, VALUE obj, int depth) {
  if (depth > UM_RESP_MAX_DEPTH)
    rb_raise(rb_eArgError, "RESP value nested deeper than %d levels", UM_RESP_MAX_DEPTH);
  switch (TYPE(obj)) {
    case T_NIL: rb_str_cat(str, "_\r\n", 3); return;
    case T_TRUE: rb_str_cat(str, "#t\r\n", 4); return;
    case T_FALSE: rb_str_cat(str, "#f\r\n", 4); return;
    case T_FIXNUM:
    case T_BIGNUM: um_resp_cat_integer(str, obj); return;
    case T_FLOAT: um_resp_cat_double(str, RFLOAT_VALUE(obj)); return;
    case T_STRING: um_resp_cat_bulk(str, obj); return;
    case T_SYMBOL: um_resp_cat_bulk(str, rb_sym2str(obj)); return;
    case T_ARRAY: {
      // A frozen copy: what is written matches the count announced.
      VALUE ary = rb_ary_dup(obj);
      long len = RARRAY_LEN(ary);
      um_resp_cat_header(str, '*', len);
      for (long i = 0; i < len; i++) um_resp_encode_value(str, RARRAY_AREF(ary, i), depth + 1);
      RB_GC_GUARD(ary);
      return;
    }
    case T_HASH: {
      um_resp_cat_header(str, '%', (long long)RHASH_SIZE(obj));
      struct um_resp_hash_ctx ctx = { .str = str, .depth = depth };
      rb_hash_foreach(obj, um_resp_encode_pair, (VALUE)&ctx);
      return;
    }
    default:
      if (rb_obj_is_kind_of(obj, um_resp_error_class())) {
        VALUE message = rb_funcall(obj, rb_intern("message"), 0);
        StringValue(message);
        if (memchr(RSTRING_PTR(message), '\r', RSTRING_LEN(message)) || memchr(RSTRING_PTR(message), '\n', RSTRING_LEN(message)))
          rb_raise(rb_eArgError, "a RESP error message cannot hold CR or LF");
        rb_str_cat(str, "-", 1);
        rb_str_cat(str, RSTRING_PTR(message), RSTRING_LEN(message));
        rb_str_cat(str, "\r\n", 2);
        RB_GC_GUARD(message);
        return;
      }
      rb_raise(rb_eTypeError, "cannot encode %s in RESP", rb_obj_classname(obj));
  }
}

// Appends obj, RESP-encoded, to str.
void um_resp_encode(VALUE str, VALUE obj) {
  um_resp_encode_value(str, obj, 0);
}
