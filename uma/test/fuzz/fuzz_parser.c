/* libFuzzer target for Uma's HTTP parser: parses a head; if it is complete
 * and chunked, decodes the rest of the input in pieces whose sizes come from
 * the input's own bytes, checking the invariants on the way. */
#include "parser.h"

#include <stdlib.h>
#include <string.h>

static int inside(uma_slice s, const char *buf, size_t len) {
  if (s.len == 0) return 1;
  if (s.len == 1 && s.ptr[0] == '/') return 1; /* the "/" of an absolute URI without a path */
  return s.ptr >= buf && s.ptr + s.len <= buf + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uma_limits lim;
  uma_limits_default(&lim);
  if (size > 0 && (data[0] & 1)) { /* small limits reach the 414/431 paths */
    lim.max_request_line = 64;
    lim.max_head = 256;
    lim.max_headers = 4;
  }
  char *buf = malloc(size ? size : 1);
  memcpy(buf, data, size);
  uma_request req;
  int64_t n = uma_parse_head(buf, size, &lim, &req);
  if (n > (int64_t)size) abort();
  if (n != 0 && n != UMA_E400 && n != UMA_E414 && n != UMA_E431 && n != UMA_E501 && n != UMA_E505 && n < 0)
    abort();
  if (n > 0) {
    if (!inside(req.method, buf, size) || !inside(req.target, buf, size) || !inside(req.authority, buf, size) ||
        !inside(req.path, buf, size) || !inside(req.query, buf, size) || !inside(req.host, buf, size))
      abort();
    if (req.header_count > lim.max_headers) abort();
    for (size_t i = 0; i < req.header_count; i++)
      if (!inside(req.headers[i].name, buf, size) || !inside(req.headers[i].value, buf, size) ||
          req.headers[i].name.len == 0)
        abort();
    if (req.chunked && req.content_length != -1) abort();
    /* A shorter prefix never completes. */
    uma_request r2;
    if (uma_parse_head(buf, (size_t)n - 1, &lim, &r2) > 0) abort();
    if (req.chunked) {
      uma_chunked d;
      uma_chunked_init(&d);
      size_t pos = (size_t)n, k = 0;
      while (pos < size && !d.done) {
        size_t piece = 1 + (size_t)(data[k++ % size] % 17);
        if (piece > size - pos) piece = size - pos;
        size_t len = piece, cons = 0;
        int rc = uma_chunked_decode(&d, buf + pos, &len, &cons);
        if (cons > piece || len > cons) abort();
        if (rc) break;
        if (cons < piece && !d.done) abort();
        pos += cons;
      }
    }
  }
  free(buf);
  return 0;
}
