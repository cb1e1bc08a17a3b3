/* C unit tests of Uma's HTTP/1.1 parser (uma/ext/uma/parser.c).
 * Build: gcc -fsanitize=address,undefined -I uma/ext/uma \
 *          uma/test/c/test_parser.c uma/ext/uma/parser.c -o test_parser
 * Prints "parser tests: N checks, M failures"; exits 1 on any failure. */
#include "parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int checks, failures;

#define CHECK(cond, ...)                                   \
  do {                                                     \
    checks++;                                              \
    if (!(cond)) {                                         \
      failures++;                                          \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n");                               \
    }                                                      \
  } while (0)

static int slice_is(uma_slice s, const char *lit) {
  return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static uma_limits dflt, small;

/* Parses a copy of buf placed so it ends exactly at a PROT_NONE page. */
static int64_t parse_at_guard(const char *buf, size_t len, const uma_limits *lim, uma_request *req) {
  long page = sysconf(_SC_PAGESIZE);
  size_t span = ((len + (size_t)page - 1) / (size_t)page) * (size_t)page;
  if (span == 0) span = (size_t)page;
  char *m = mmap(NULL, span + (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) { perror("mmap"); exit(2); }
  if (mprotect(m + span, (size_t)page, PROT_NONE)) { perror("mprotect"); exit(2); }
  char *p = m + span - len;
  memcpy(p, buf, len);
  int64_t rc = uma_parse_head(p, len, lim, req);
  munmap(m, span + (size_t)page);
  return rc;
}

/* expect: 1 = complete with the whole input as head, else an error code. */
typedef struct {
  const char *name;
  const char *input;
  int64_t expect;
  const uma_limits *limits;
} head_case;

#define OK 1
static const head_case table[] = {
  {"simple get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", OK, NULL},
  {"http/1.0 no host", "GET / HTTP/1.0\r\n\r\n", OK, NULL},
  {"leading crlf", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", OK, NULL},
  {"absolute form", "GET http://ex.com:8080/p/q?x=1 HTTP/1.1\r\nHost: ex.com\r\n\r\n", OK, NULL},
  {"absolute no path", "GET http://ex.com HTTP/1.1\r\nHost: ex.com\r\n\r\n", OK, NULL},
  {"options star", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", OK, NULL},
  {"connect", "CONNECT ex.com:443 HTTP/1.1\r\nHost: ex.com:443\r\n\r\n", OK, NULL},
  {"cl list same", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n", OK, NULL},
  {"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", OK, NULL},
  {"obs-text value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\t\r\n\r\n", OK, NULL},
  {"empty value", "GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n", OK, NULL},
  {"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"double sp", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"trailing sp", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"target ctl", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"target 8bit", "GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"target relative", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"star not options", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"authority not connect", "GET ex.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"connect origin", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"absolute userinfo", "GET http://u@ex.com/ HTTP/1.1\r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"version 2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", UMA_E505, NULL},
  {"version 1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", UMA_E505, NULL},
  {"version junk", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"version lower", "GET / http/1.1\r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"no version", "GET /\r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"bare lf request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"bare lf header", "GET / HTTP/1.1\r\nHost: a\n\r\n", UMA_E400, NULL},
  {"bare lf end", "GET / HTTP/1.1\r\nHost: a\r\n\n", UMA_E400, NULL},
  {"bare lf leading", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", UMA_E400, NULL},
  {"ws before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", UMA_E400, NULL},
  {"bad name", "GET / HTTP/1.1\r\nHost: a\r\nX(y: 1\r\n\r\n", UMA_E400, NULL},
  {"no colon", "GET / HTTP/1.1\r\nHost: a\r\nXy\r\n\r\n", UMA_E400, NULL},
  {"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", UMA_E400, NULL},
  {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", UMA_E400, NULL},
  {"obs-fold tab", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", UMA_E400, NULL},
  {"bare cr value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", UMA_E400, NULL},
  {"nul value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", UMA_E400, NULL},
  {"ctl value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x1b\r\n\r\n", UMA_E400, NULL},
  {"del value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", UMA_E400, NULL},
  {"bare cr end", "GET / HTTP/1.1\r\nHost: a\r\n\rX", UMA_E400, NULL},
  {"no host 1.1", "GET / HTTP/1.1\r\nX: a\r\n\r\n", UMA_E400, NULL},
  {"two hosts 1.1", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", UMA_E400, NULL},
  {"two hosts 1.0", "GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n", UMA_E400, NULL},
  {"cl not digits", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n", UMA_E400, NULL},
  {"cl sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", UMA_E400, NULL},
  {"cl empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", UMA_E400, NULL},
  {"cl overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", UMA_E400, NULL},
  {"cl differ", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", UMA_E400, NULL},
  {"cl list differ", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", UMA_E400, NULL},
  {"cl list empty el", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", UMA_E400, NULL},
  {"te and cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", UMA_E400, NULL},
  {"te gzip final", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", UMA_E400, NULL},
  {"te identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", UMA_E400, NULL},
  {"te unknown", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br\r\n\r\n", UMA_E501, NULL},
  {"te chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", UMA_E400, NULL},
  {"te 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", UMA_E400, NULL},
  {"small ok", "GET /abc HTTP/1.1\r\nHost: a\r\n\r\n", OK, &small},
  {"414", "GET /0123456789012345678901234567890 HTTP/1.1\r\nHost: a\r\n\r\n", UMA_E414, &small},
  {"431 count", "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n", UMA_E431, &small},
  {"431 size", "GET / HTTP/1.1\r\nHost: a\r\nA: 0123456789012345678901234567890123456789\r\n"
               "B: 0123456789012345678901234567890123456789012345678901234567890123456789\r\n\r\n", UMA_E431, &small},
  {"400 before 431", "GET / HTTP/1.1\r\nHost : a\r\nA: 0123456789012345678901234567890123456789\r\n"
               "B: 0123456789012345678901234567890123456789012345678901234567890123456789\r\n\r\n", UMA_E400, &small},
};

static void run_table(void) {
  for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++) {
    const head_case *c = &table[t];
    const uma_limits *lim = c->limits ? c->limits : &dflt;
    size_t len = strlen(c->input);
    if (strcmp(c->name, "nul value") == 0) len = strlen(c->input) + 1 + strlen(c->input + strlen(c->input) + 1);
    uma_request req;
    int64_t want = c->expect == OK ? (int64_t)len : c->expect;
    int64_t got = uma_parse_head(c->input, len, lim, &req);
    CHECK(got == want, "%s: got %lld want %lld", c->name, (long long)got, (long long)want);
    got = parse_at_guard(c->input, len, lim, &req);
    CHECK(got == want, "%s at guard: got %lld want %lld", c->name, (long long)got, (long long)want);
    int bad = 0;
    for (size_t k = 0; k < len; k++) {
      int64_t r = parse_at_guard(c->input, k, lim, &req);
      if (!(r == UMA_INCOMPLETE || (want < 0 && r == want))) {
        if (!bad) CHECK(0, "%s: prefix %zu gives %lld (want 0 or %lld)", c->name, k, (long long)r, (long long)want);
        bad = 1;
      }
    }
    CHECK(!bad, "%s: all prefixes", c->name);
  }
}

static int64_t parse(const char *s, uma_request *req) {
  return uma_parse_head(s, strlen(s), &dflt, req);
}

static void test_fields(void) {
  uma_request r;
  const char *s = "\r\nPOST /a/b?x=1&y HTTP/1.1\r\nHost:  ex.com \r\nContent-Length: 12\r\n"
                  "X-Y:\tv a l \t\r\nExpect: 100-CONTINUE\r\n\r\nbody";
  int64_t n = parse(s, &r);
  CHECK(n == (int64_t)strlen(s) - 4, "head length %lld", (long long)n);
  CHECK(slice_is(r.method, "POST"), "method");
  CHECK(slice_is(r.target, "/a/b?x=1&y"), "target");
  CHECK(slice_is(r.path, "/a/b"), "path");
  CHECK(slice_is(r.query, "x=1&y"), "query");
  CHECK(r.authority.len == 0, "authority empty");
  CHECK(r.version_minor == 1, "minor");
  CHECK(r.header_count == 4, "count %zu", r.header_count);
  CHECK(slice_is(r.headers[0].name, "Host") && slice_is(r.headers[0].value, "ex.com"), "host field");
  CHECK(slice_is(r.headers[2].name, "X-Y") && slice_is(r.headers[2].value, "v a l"), "ows trimmed");
  CHECK(slice_is(r.host, "ex.com"), "host");
  CHECK(r.content_length == 12, "cl");
  CHECK(!r.chunked, "not chunked");
  CHECK(r.expect_continue, "expect");
  CHECK(r.keep_alive, "keep alive 1.1");

  n = parse("GET http://ex.com:81?q HTTP/1.1\r\nHost: ex.com\r\n\r\n", &r);
  CHECK(n > 0, "absolute %lld", (long long)n);
  CHECK(slice_is(r.authority, "ex.com:81"), "authority");
  CHECK(slice_is(r.path, "/"), "path / if empty");
  CHECK(slice_is(r.query, "q"), "abs query");

  n = parse("GET HTTPS://ex.com/p HTTP/1.1\r\nHost: ex.com\r\n\r\n", &r);
  CHECK(n > 0 && slice_is(r.path, "/p") && slice_is(r.authority, "ex.com") && r.query.len == 0, "https absolute");

  n = parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &r);
  CHECK(n > 0 && slice_is(r.path, "*"), "options *");
  n = parse("CONNECT ex.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", &r);
  CHECK(n > 0 && slice_is(r.authority, "ex.com:443"), "connect authority");

  n = parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, Close\r\n\r\n", &r);
  CHECK(n > 0 && !r.keep_alive, "1.1 close");
  n = parse("GET / HTTP/1.0\r\n\r\n", &r);
  CHECK(n > 0 && !r.keep_alive && r.version_minor == 0 && r.content_length == -1 && r.host.len == 0, "1.0 default");
  n = parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r);
  CHECK(n > 0 && r.keep_alive, "1.0 keep-alive");
  n = parse("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: Chunked\r\n\r\n", &r);
  CHECK(n > 0 && r.chunked && r.content_length == -1, "chunked");
  n = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n", &r);
  CHECK(n > 0 && r.content_length == INT64_MAX, "cl max");
  n = parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue-x\r\n\r\n", &r);
  CHECK(n > 0 && !r.expect_continue, "other expect");

  /* Limits on incomplete input. */
  char big[10000];
  memcpy(big, "GET /", 5);
  memset(big + 5, 'a', sizeof(big) - 5);
  CHECK(uma_parse_head(big, 8192, &dflt, &r) == UMA_INCOMPLETE, "8192 request line incomplete");
  CHECK(uma_parse_head(big, 8193, &dflt, &r) == UMA_E414, "incomplete 414");
  CHECK(uma_parse_head(big, sizeof(big), &dflt, &r) == UMA_E414, "incomplete 414 long");

  /* 101 headers; a 64 KiB+ head. */
  static char many[200000];
  size_t p = (size_t)sprintf(many, "GET / HTTP/1.1\r\nHost: a\r\n");
  for (int i = 0; i < 99; i++) p += (size_t)sprintf(many + p, "X%d: v\r\n", i);
  memcpy(many + p, "\r\n", 3);
  CHECK(uma_parse_head(many, p + 2, &dflt, &r) == (int64_t)(p + 2) && r.header_count == 100, "100 headers ok");
  p += (size_t)sprintf(many + p, "Y: v\r\n\r\n");
  CHECK(uma_parse_head(many, p, &dflt, &r) == UMA_E431, "101 headers 431");
  p = (size_t)sprintf(many, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
  memset(many + p, 'v', 70000);
  CHECK(uma_parse_head(many, p + 70000, &dflt, &r) == UMA_E431, "incomplete head 431");
  CHECK(uma_parse_head(many, 60000, &dflt, &r) == UMA_INCOMPLETE, "60000 incomplete");
  memcpy(many + p + 70000, "\r\n\r\n", 4);
  CHECK(uma_parse_head(many, p + 70004, &dflt, &r) == UMA_E431, "complete head 431");
}

/* Chunked decoder. */
typedef struct {
  const char *name;
  const char *input; /* body, then possibly the next request's bytes */
  int rc;
  const char *body;  /* decoded (for rc 0) */
  size_t used;       /* input bytes consumed when done (rc 0) */
} chunk_case;

static const chunk_case ctable[] = {
  {"simple", "5\r\nhello\r\n0\r\n\r\n", 0, "hello", 15},
  {"two chunks + next", "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\nGET", 0, "abc0123456789", 28},
  {"ext", "3;a=b;c=\"d\"\r\nabc\r\n0;x\r\n\r\n", 0, "abc", 25},
  {"bws ext", "3 ;a=b\r\nabc\r\n0\r\n\r\n", 0, "abc", 18},
  {"trailers", "2\r\nhi\r\n0\r\nX-A: 1\r\nY:\r\n\r\nZZ", 0, "hi", 24},
  {"hex upper lower", "aB\r\n", -1, NULL, 0},
  {"empty body", "0\r\n\r\n", 0, "", 5},
  {"leading zeros", "0005\r\nhello\r\n0000\r\n\r\n", 0, "hello", 21},
  {"bad hex", "5x\r\nhello\r\n0\r\n\r\n", UMA_E400, NULL, 0},
  {"no size", "\r\nhello\r\n0\r\n\r\n", UMA_E400, NULL, 0},
  {"overflow", "80000000000000000\r\n", UMA_E400, NULL, 0},
  {"overflow 2", "8000000000000000\r\n", UMA_E400, NULL, 0},
  {"missing crlf", "5\r\nhelloX\r\n0\r\n\r\n", UMA_E400, NULL, 0},
  {"bare lf size", "5\nhello\r\n0\r\n\r\n", UMA_E400, NULL, 0},
  {"bare lf data", "5\r\nhello\n0\r\n\r\n", UMA_E400, NULL, 0},
  {"bare lf final", "0\r\n\n", UMA_E400, NULL, 0},
  {"bad trailer", "0\r\nX y: 1\r\n\r\n", UMA_E400, NULL, 0},
  {"fold trailer", "0\r\nX: 1\r\n 2\r\n\r\n", UMA_E400, NULL, 0},
  {"ctl trailer", "0\r\nX: \x01\r\n\r\n", UMA_E400, NULL, 0},
  {"ctl ext", "1;\x01\r\na\r\n0\r\n\r\n", UMA_E400, NULL, 0},
};

static void check_chunk_result(const chunk_case *c, int rc, const char *out, size_t outlen,
                               size_t used, int done, const char *how) {
  size_t in = strlen(c->input);
  if (c->rc == -1) { /* incomplete: no error, not done */
    CHECK(rc == 0 && !done && used == in, "%s %s: rc %d done %d", c->name, how, rc, done);
    return;
  }
  if (c->rc) {
    CHECK(rc == c->rc, "%s %s: rc %d want %d", c->name, how, rc, c->rc);
    return;
  }
  CHECK(rc == 0 && done, "%s %s: rc %d done %d", c->name, how, rc, done);
  CHECK(outlen == strlen(c->body) && memcmp(out, c->body, outlen) == 0, "%s %s: body %.*s", c->name, how,
        (int)outlen, out);
  CHECK(used == c->used, "%s %s: used %zu want %zu", c->name, how, used, c->used);
}

/* Feeds input in pieces split at the given points (split == len: one call). */
static int feed(const chunk_case *c, size_t step, size_t split, char *out, size_t *outlen,
                size_t *used, int *done) {
  size_t in = strlen(c->input);
  char *buf = malloc(in + 1);
  memcpy(buf, c->input, in);
  uma_chunked d;
  uma_chunked_init(&d);
  size_t pos = 0;
  *outlen = 0;
  int rc = 0;
  while (pos < in && !d.done) {
    size_t n = step ? step : (pos < split ? split - pos : in - pos);
    if (n > in - pos) n = in - pos;
    size_t len = n, cons = 0;
    rc = uma_chunked_decode(&d, buf + pos, &len, &cons);
    if (rc) break;
    if (cons > n || len > cons) { rc = 999; break; }
    memcpy(out + *outlen, buf + pos, len);
    *outlen += len;
    pos += cons;
    if (cons < n && !d.done) { rc = 998; break; }
  }
  *used = pos;
  *done = d.done;
  free(buf);
  return rc;
}

static void test_chunked(void) {
  char out[256];
  size_t outlen, used;
  int done;
  for (size_t t = 0; t < sizeof(ctable) / sizeof(ctable[0]); t++) {
    const chunk_case *c = &ctable[t];
    size_t in = strlen(c->input);
    int rc = feed(c, 0, in, out, &outlen, &used, &done);
    check_chunk_result(c, rc, out, outlen, used, done, "whole");
    rc = feed(c, 1, 0, out, &outlen, &used, &done);
    check_chunk_result(c, rc, out, outlen, used, done, "byte by byte");
    for (size_t k = 1; k < in; k++) {
      char how[32];
      snprintf(how, sizeof(how), "split %zu", k);
      rc = feed(c, 0, k, out, &outlen, &used, &done);
      check_chunk_result(c, rc, out, outlen, used, done, how);
    }
  }
  /* Extension and trailer bounds. */
  static char big[40000];
  size_t p = (size_t)sprintf(big, "1;");
  memset(big + p, 'e', UMA_CHUNK_MAX_EXT + 10);
  p += UMA_CHUNK_MAX_EXT + 10;
  memcpy(big + p, "\r\na\r\n0\r\n\r\n", 11);
  uma_chunked d;
  uma_chunked_init(&d);
  size_t len = strlen(big), cons;
  CHECK(uma_chunked_decode(&d, big, &len, &cons) == UMA_E400, "extension too long");
  p = (size_t)sprintf(big, "0\r\n");
  for (int i = 0; i < 2000; i++) p += (size_t)sprintf(big + p, "X-Trailer: v\r\n");
  memcpy(big + p, "\r\n", 3);
  uma_chunked_init(&d);
  len = strlen(big);
  CHECK(uma_chunked_decode(&d, big, &len, &cons) == UMA_E400, "trailers too long");
  p = (size_t)sprintf(big, "0\r\n");
  for (int i = 0; i < 100; i++) p += (size_t)sprintf(big + p, "X-Trailer: v\r\n");
  memcpy(big + p, "\r\n", 3);
  uma_chunked_init(&d);
  len = strlen(big);
  CHECK(uma_chunked_decode(&d, big, &len, &cons) == 0 && d.done && cons == strlen(big), "100 trailers ok");
  /* A large chunk size is fine when it fits in 63 bits. */
  char s[] = "7fffffffffffffff\r\nab";
  uma_chunked_init(&d);
  len = strlen(s);
  CHECK(uma_chunked_decode(&d, s, &len, &cons) == 0 && len == 2 && memcmp(s, "ab", 2) == 0 &&
            d.chunk_left == 0x7fffffffffffffffULL - 2, "63-bit chunk");
}

int main(void) {
  uma_limits_default(&dflt);
  CHECK(dflt.max_request_line == 8192 && dflt.max_head == 65536 && dflt.max_headers == 100, "defaults");
  small.max_request_line = 32;
  small.max_head = 128;
  small.max_headers = 4;
  run_table();
  test_fields();
  test_chunked();
  printf("parser tests: %d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
