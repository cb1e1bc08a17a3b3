/* Uma::Parser: parses a request head with parser.c and fills a Rack env.
 *
 * Keys are frozen interned strings (the VM's fstring table deduplicates
 * them, so every request shares one copy of "HTTP_HOST"); common values
 * (methods, protocols, "") are frozen strings made once.
 */
#include <ruby/encoding.h>
#include <string.h>

#include "parser.h"
#include "uma_ext.h"

typedef struct {
  uma_limits limits;
  int64_t content_length;
  int chunked;
  int keep_alive;
  int expect_continue;
} uma_parser;

static const rb_data_type_t uma_parser_type = {
  .wrap_struct_name = "Uma::Parser",
  .function = {.dfree = RUBY_TYPED_DEFAULT_FREE, .dsize = NULL},
  .flags = RUBY_TYPED_FREE_IMMEDIATELY | RUBY_TYPED_WB_PROTECTED,
};

/* Frozen strings made once, kept alive in one marked array. */
static VALUE k_request_method, k_path_info, k_query_string, k_server_protocol,
    k_server_name, k_server_port, k_content_type, k_content_length;
static VALUE v_empty, v_http10, v_http11, v_port80;
static VALUE v_methods[9];
static const char *method_names[9] = {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"};

static VALUE fstr(const char *s, size_t len) {
  return rb_enc_interned_str(s, (long)len, rb_ascii8bit_encoding());
}

static VALUE keep(VALUE v) {
  rb_gc_register_mark_object(v);
  return v;
}

static VALUE parser_alloc(VALUE klass) {
  uma_parser *p;
  VALUE obj = TypedData_Make_Struct(klass, uma_parser, &uma_parser_type, p);
  uma_limits_default(&p->limits);
  p->content_length = -1;
  return obj;
}

static uma_parser *parser_get(VALUE self) {
  return rb_check_typeddata(self, &uma_parser_type);
}

static size_t limit_value(VALUE v, const char *name, size_t deflt) {
  if (v == Qundef || NIL_P(v)) return deflt;
  long n = NUM2LONG(v);
  if (n <= 0) rb_raise(rb_eArgError, "%s must be positive (given %ld)", name, n);
  return (size_t)n;
}

/* Parser.new(max_request_line: 8192, max_head: 65536, max_headers: 100) */
static VALUE parser_initialize(int argc, VALUE *argv, VALUE self) {
  VALUE opts, v[3] = {Qundef, Qundef, Qundef};
  rb_scan_args(argc, argv, "0:", &opts);
  if (!NIL_P(opts)) {
    ID ids[3] = {rb_intern("max_request_line"), rb_intern("max_head"), rb_intern("max_headers")};
    rb_get_kwargs(opts, ids, 0, 3, v); /* raises on an unknown keyword */
  }
  uma_parser *p = parser_get(self);
  p->limits.max_request_line = limit_value(v[0], "max_request_line", p->limits.max_request_line);
  p->limits.max_head = limit_value(v[1], "max_head", p->limits.max_head);
  p->limits.max_headers = limit_value(v[2], "max_headers", p->limits.max_headers);
  if (p->limits.max_headers > UMA_MAX_HEADERS)
    rb_raise(rb_eArgError, "max_headers must be at most %d", UMA_MAX_HEADERS);
  return self;
}

static VALUE method_value(uma_slice m) {
  for (size_t i = 0; i < 9; i++)
    if (strlen(method_names[i]) == m.len && memcmp(method_names[i], m.ptr, m.len) == 0) return v_methods[i];
  return fstr(m.ptr, m.len);
}

static VALUE str_or_empty(uma_slice s) {
  return s.len ? rb_str_new(s.ptr, (long)s.len) : v_empty;
}

/* "HTTP_" + the name upcased with '-' as '_'. */
static VALUE header_key(uma_slice name) {
  VALUE tmp;
  char *buf = ALLOCV_N(char, tmp, name.len + 5);
  memcpy(buf, "HTTP_", 5);
  for (size_t i = 0; i < name.len; i++) {
    char c = name.ptr[i];
    buf[5 + i] = c == '-' ? '_' : (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
  }
  VALUE key = fstr(buf, name.len + 5);
  ALLOCV_END(tmp);
  return key;
}

static int name_is(uma_slice name, const char *lit) {
  size_t n = strlen(lit);
  if (name.len != n) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = name.ptr[i];
    if (c >= 'A' && c <= 'Z') c += 32;
    if (c != lit[i]) return 0;
  }
  return 1;
}

static int has_underscore(uma_slice name) {
  return memchr(name.ptr, '_', name.len) != NULL;
}

/* SERVER_NAME and SERVER_PORT from host[:port] (IPv6 in brackets). */
static void set_server(VALUE env, uma_slice host) {
  if (!host.len) return;
  const char *p = host.ptr;
  size_t len = host.len, name_len = len;
  const char *port = NULL;
  size_t port_len = 0;
  if (p[0] == '[') {
    const char *close = memchr(p, ']', len);
    if (close) {
      name_len = (size_t)(close - p) + 1;
      if (name_len < len && p[name_len] == ':') {
        port = p + name_len + 1;
        port_len = len - name_len - 1;
      }
    }
  } else {
    const char *colon = memchr(p, ':', len);
    if (colon) {
      name_len = (size_t)(colon - p);
      port = colon + 1;
      port_len = len - name_len - 1;
    }
  }
  rb_hash_aset(env, k_server_name, rb_str_new(p, (long)name_len));
  rb_hash_aset(env, k_server_port, port_len ? rb_str_new(port, (long)port_len) : v_port80);
}

/* parser.parse(buf, env) -> head length, or nil when incomplete; raises
 * Uma::HTTPError with the status for a refused request. */
static VALUE parser_parse(VALUE self, VALUE buf, VALUE env) {
  uma_parser *p = parser_get(self);
  StringValue(buf);
  Check_Type(env, T_HASH);
  uma_request req;
  int64_t rc = uma_parse_head(RSTRING_PTR(buf), (size_t)RSTRING_LEN(buf), &p->limits, &req);
  if (rc == UMA_INCOMPLETE) return Qnil;
  if (rc < 0) uma_raise_status((int)-rc);

  p->content_length = req.content_length;
  p->chunked = req.chunked;
  p->keep_alive = req.keep_alive;
  p->expect_continue = req.expect_continue;

  rb_hash_aset(env, k_request_method, method_value(req.method));
  rb_hash_aset(env, k_path_info, str_or_empty(req.path));
  rb_hash_aset(env, k_query_string, str_or_empty(req.query));
  rb_hash_aset(env, k_server_protocol, req.version_minor ? v_http11 : v_http10);
  set_server(env, req.authority.len ? req.authority : req.host);

  for (size_t i = 0; i < req.header_count; i++) {
    uma_header *h = &req.headers[i];
    VALUE key;
    if (name_is(h->name, "content-type")) key = k_content_type;
    /* Set below from the value the parser checked (repeats are equal). */
    else if (name_is(h->name, "content-length")) continue;
    /* Dropped: with '-' and '_' both mapped to '_', "X_Forwarded_For" could
     * pose as "X-Forwarded-For" to the app (nginx drops them too). */
    else if (has_underscore(h->name)) continue;
    else key = header_key(h->name);
    VALUE old = rb_hash_lookup2(env, key, Qundef);
    if (old == Qundef) {
      rb_hash_aset(env, key, str_or_empty(h->value));
    } else {
      VALUE joined = rb_str_dup(old);
      if (name_is(h->name, "cookie")) rb_str_cat(joined, "; ", 2);
      else rb_str_cat(joined, ", ", 2);
      rb_str_cat(joined, h->value.ptr, (long)h->value.len);
      rb_hash_aset(env, key, joined);
    }
  }
  if (req.content_length >= 0) rb_hash_aset(env, k_content_length, rb_sprintf("%" PRId64, req.content_length));
  return LL2NUM(rc);
}

/* The body framing of the last request parsed: its Content-Length, or nil. */
static VALUE parser_content_length(VALUE self) {
  uma_parser *p = parser_get(self);
  return p->content_length < 0 ? Qnil : LL2NUM(p->content_length);
}

/* Whether the last request's body is chunked. */
static VALUE parser_chunked_p(VALUE self) { return parser_get(self)->chunked ? Qtrue : Qfalse; }

/* Whether the connection stays open after the last request. */
static VALUE parser_keep_alive_p(VALUE self) { return parser_get(self)->keep_alive ? Qtrue : Qfalse; }

/* Whether the last request sent Expect: 100-continue. */
static VALUE parser_expect_continue_p(VALUE self) { return parser_get(self)->expect_continue ? Qtrue : Qfalse; }

void uma_parser_class_init(void) {
  VALUE c = rb_define_class_under(mUma, "Parser", rb_cObject);
  rb_define_alloc_func(c, parser_alloc);
  rb_define_method(c, "initialize", parser_initialize, -1);
  rb_define_method(c, "parse", parser_parse, 2);
  rb_define_method(c, "content_length", parser_content_length, 0);
  rb_define_method(c, "chunked?", parser_chunked_p, 0);
  rb_define_method(c, "keep_alive?", parser_keep_alive_p, 0);
  rb_define_method(c, "expect_continue?", parser_expect_continue_p, 0);

#define K(var, s) var = keep(fstr(s, sizeof(s) - 1))
  K(k_request_method, "REQUEST_METHOD");
  K(k_path_info, "PATH_INFO");
  K(k_query_string, "QUERY_STRING");
  K(k_server_protocol, "SERVER_PROTOCOL");
  K(k_server_name, "SERVER_NAME");
  K(k_server_port, "SERVER_PORT");
  K(k_content_type, "CONTENT_TYPE");
  K(k_content_length, "CONTENT_LENGTH");
  K(v_empty, "");
  K(v_http10, "HTTP/1.0");
  K(v_http11, "HTTP/1.1");
  K(v_port80, "80");
#undef K
  for (size_t i = 0; i < 9; i++) v_methods[i] = keep(fstr(method_names[i], strlen(method_names[i])));
}
