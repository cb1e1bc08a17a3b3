/* Init_uma_ext: the Uma module, Uma::HTTPError, then one init per class. */
#include "uma_ext.h"

VALUE mUma;
VALUE eUmaHTTPError;
static ID id_status;

static const char *status_reason(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 431: return "Request Header Fields Too Large";
  case 501: return "Not Implemented";
  case 505: return "HTTP Version Not Supported";
  default: return "Error";
  }
}

void uma_raise_status(int status) {
  VALUE msg = rb_sprintf("%d %s", status, status_reason(status));
  VALUE err = rb_exc_new_str(eUmaHTTPError, msg);
  rb_ivar_set(err, id_status, INT2FIX(status));
  rb_exc_raise(err);
}

RUBY_FUNC_EXPORTED void Init_uma_ext(void) {
  mUma = rb_define_module("Uma");
  /* A request refused by the parser: #status is the HTTP status to answer
   * with before the connection is closed. */
  eUmaHTTPError = rb_define_class_under(mUma, "HTTPError", rb_eStandardError);
  id_status = rb_intern("@status");
  rb_define_attr(eUmaHTTPError, "status", 1, 0);
  uma_parser_class_init();
  uma_chunked_class_init();
}
