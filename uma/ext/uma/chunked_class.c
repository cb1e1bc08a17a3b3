/* Uma::ChunkedDecoder: a chunked request body decoded piece by piece. */
#include "parser.h"
#include "uma_ext.h"

typedef struct {
  uma_chunked dec;
  VALUE remainder;
} uma_chunked_obj;

static void chunked_mark(void *ptr) {
  uma_chunked_obj *c = ptr;
  rb_gc_mark_movable(c->remainder);
}

static void chunked_compact(void *ptr) {
  uma_chunked_obj *c = ptr;
  c->remainder = rb_gc_location(c->remainder);
}

static const rb_data_type_t uma_chunked_type = {
  .wrap_struct_name = "Uma::ChunkedDecoder",
  .function = {.dmark = chunked_mark, .dfree = RUBY_TYPED_DEFAULT_FREE, .dcompact = chunked_compact},
  .flags = RUBY_TYPED_FREE_IMMEDIATELY | RUBY_TYPED_WB_PROTECTED,
};

static VALUE chunked_alloc(VALUE klass) {
  uma_chunked_obj *c;
  VALUE obj = TypedData_Make_Struct(klass, uma_chunked_obj, &uma_chunked_type, c);
  uma_chunked_init(&c->dec);
  RB_OBJ_WRITE(obj, &c->remainder, rb_str_new(NULL, 0));
  return obj;
}

static uma_chunked_obj *chunked_get(VALUE self) {
  return rb_check_typeddata(self, &uma_chunked_type);
}

/* decoder.decode(data) -> the body bytes in data (a new binary String).
 * Once the message has ended (#done?), bytes after it are in #remainder.
 * Raises Uma::HTTPError (400) on malformed framing. */
static VALUE chunked_decode(VALUE self, VALUE data) {
  uma_chunked_obj *c = chunked_get(self);
  StringValue(data);
  if (c->dec.done) rb_raise(rb_eArgError, "the chunked body has already ended");
  long n = RSTRING_LEN(data);
  VALUE out = rb_str_new(RSTRING_PTR(data), n);
  size_t len = (size_t)n, consumed = 0;
  if (uma_chunked_decode(&c->dec, RSTRING_PTR(out), &len, &consumed) < 0) uma_raise_status(400);
  if (c->dec.done && consumed < (size_t)n)
    RB_OBJ_WRITE(self, &c->remainder, rb_str_new(RSTRING_PTR(data) + consumed, n - (long)consumed));
  rb_str_set_len(out, (long)len);
  RB_GC_GUARD(data);
  return out;
}

/* Whether the final chunk and the trailers have been decoded. */
static VALUE chunked_done_p(VALUE self) { return chunked_get(self)->dec.done ? Qtrue : Qfalse; }

/* The bytes given after the end of the message (the next request's). */
static VALUE chunked_remainder(VALUE self) { return chunked_get(self)->remainder; }

void uma_chunked_class_init(void) {
  VALUE c = rb_define_class_under(mUma, "ChunkedDecoder", rb_cObject);
  rb_define_alloc_func(c, chunked_alloc);
  rb_define_method(c, "decode", chunked_decode, 1);
  rb_define_method(c, "done?", chunked_done_p, 0);
  rb_define_method(c, "remainder", chunked_remainder, 0);
}
