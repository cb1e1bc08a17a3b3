/* Uma::Response.build_head: a response head as one String, the header
 * fields checked in C (no Ruby regexps per response).
 *
 * A field the server must not send is refused with Uma::HTTPError (500):
 * a name that is not a lowercase token (Rack 3 asks for lowercase names),
 * a value holding CR, LF or NUL (it would split the head). Names starting
 * with "rack." are the server's business and are left out; an Array value
 * becomes one field per element.
 */
#include <ruby/encoding.h>
#include <string.h>

#include "uma_ext.h"

static ID id_for_status, id_exception;

/* 1 for the characters of a lowercase token (RFC 9110 tchar, no A-Z). */
static unsigned char tchar[256];

NORETURN(static void refuse(const char *fmt, VALUE arg));
static void refuse(const char *fmt, VALUE arg) {
  VALUE error = rb_funcall(eUmaHTTPError, id_for_status, 1, INT2FIX(500));
  rb_exc_raise(rb_funcall(error, id_exception, 1, rb_sprintf(fmt, arg)));
}

static int name_ok(VALUE name) {
  const unsigned char *p = (const unsigned char *)RSTRING_PTR(name);
  long len = RSTRING_LEN(name);
  if (len == 0) return 0;
  for (long i = 0; i < len; i++)
    if (!tchar[p[i]]) return 0;
  return 1;
}

static void add_field(VALUE head, VALUE name, VALUE value) {
  value = rb_obj_as_string(value);
  const char *p = RSTRING_PTR(value);
  long len = RSTRING_LEN(value);
  if (memchr(p, '\r', len) || memchr(p, '\n', len) || memchr(p, '\0', len))
    refuse("bad value for header %" PRIsVALUE, name);
  rb_str_buf_append(head, name);
  rb_str_buf_cat(head, ": ", 2);
  rb_str_buf_cat(head, p, len);
  rb_str_buf_cat(head, "\r\n", 2);
  RB_GC_GUARD(value);
}

static int add_header_i(VALUE name, VALUE value, VALUE head) {
  if (!RB_TYPE_P(name, T_STRING)) refuse("bad header name %+" PRIsVALUE, name);
  if (RSTRING_LEN(name) >= 5 && memcmp(RSTRING_PTR(name), "rack.", 5) == 0) return ST_CONTINUE;
  if (!name_ok(name)) refuse("bad header name %+" PRIsVALUE, name);
  if (RB_TYPE_P(value, T_ARRAY)) {
    for (long i = 0; i < RARRAY_LEN(value); i++) add_field(head, name, RARRAY_AREF(value, i));
  } else {
    add_field(head, name, value);
  }
  return ST_CONTINUE;
}

/* Response.build_head(status_line, headers, extra) -> String: the status
 * line, each field of headers, extra (the framing fields the server adds)
 * and the blank line. */
static VALUE response_build_head(VALUE mod, VALUE status_line, VALUE headers, VALUE extra) {
  StringValue(status_line);
  StringValue(extra);
  Check_Type(headers, T_HASH);
  VALUE head = rb_str_buf_new(256 + RSTRING_LEN(extra));
  rb_enc_associate_index(head, rb_ascii8bit_encindex());
  rb_str_buf_append(head, status_line);
  rb_hash_foreach(headers, add_header_i, head);
  rb_str_buf_append(head, extra);
  rb_str_buf_cat(head, "\r\n", 2);
  return head;
}

void uma_response_class_init(void) {
  id_for_status = rb_intern("for_status");
  id_exception = rb_intern("exception");
  const char *special = "!#$%&'*+-.^_`|~";
  for (const char *c = special; *c; c++) tchar[(unsigned char)*c] = 1;
  for (int c = '0'; c <= '9'; c++) tchar[c] = 1;
  for (int c = 'a'; c <= 'z'; c++) tchar[c] = 1;
  VALUE mResponse = rb_define_module_under(mUma, "Response");
  rb_define_singleton_method(mResponse, "build_head", response_build_head, 3);
}
