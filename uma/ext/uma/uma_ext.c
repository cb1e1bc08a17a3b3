/* Init_uma_ext: the Uma module, Uma::HTTPError, then one init per class. */
#include "uma_ext.h"

VALUE mUma;
VALUE eUmaHTTPError;
static ID id_for_status;

/* The error comes from Uma::HTTPError.for_status (lib/uma/response.rb,
 * loaded by lib/uma.rb with this extension), so the reason phrases live in
 * one table. */
void uma_raise_status(int status) {
  rb_exc_raise(rb_funcall(eUmaHTTPError, id_for_status, 1, INT2FIX(status)));
}

RUBY_FUNC_EXPORTED void Init_uma_ext(void) {
  mUma = rb_define_module("Uma");
  /* A request refused by the parser: #status is the HTTP status to answer
   * with before the connection is closed. */
  eUmaHTTPError = rb_define_class_under(mUma, "HTTPError", rb_eStandardError);
  id_for_status = rb_intern("for_status");
  rb_define_attr(eUmaHTTPError, "status", 1, 0);
  uma_parser_class_init();
  uma_chunked_class_init();
  uma_response_class_init();
  uma_peer_class_init();
}
