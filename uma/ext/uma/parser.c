/* Uma's HTTP/1.1 request parser (RFC 9110/9112, strictly). Plain C, no Ruby.
 *
 * The head parser starts over on every call and reads the head line by
 * line; a decision (a refusal or a limit) is taken only from bytes seen, in
 * the order they come, so a prefix of a request gives either
 * UMA_INCOMPLETE or the same refusal as the whole request.
 */
#include "parser.h"

#include <string.h>

void uma_limits_default(uma_limits *limits) {
  limits->max_request_line = 8192;
  limits->max_head = 65536;
  limits->max_headers = UMA_MAX_HEADERS;
}

/* RFC 9110 5.6.2 tchar. */
static int is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return 1;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return 1;
  switch (c) {
  case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
  case '+': case '-': case '.': case '^': case '_': case '`': case '|':
  case '~':
    return 1;
  default:
    return 0;
  }
}

static int is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

static int slice_ieq(const char *p, size_t len, const char *lit) {
  size_t n = strlen(lit);
  if (len != n) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char a = (unsigned char)p[i], b = (unsigned char)lit[i];
    if (a >= 'A' && a <= 'Z') a |= 0x20;
    if (a != b) return 0;
  }
  return 1;
}

static int slice_eq(const char *p, size_t len, const char *lit) {
  return len == strlen(lit) && memcmp(p, lit, len) == 0;
}

static uma_slice mk(const char *p, size_t len) {
  uma_slice s = {p, len};
  return s;
}

static const char root_path[] = "/";

/* The authority of a CONNECT target or an absolute URI: host[:port], no
 * userinfo, no path characters. */
static int valid_authority(const char *p, size_t len, int port_required) {
  if (len == 0) return 0;
  size_t colon = len;
  for (size_t i = 0; i < len; i++) {
    char c = p[i];
    if (c == '/' || c == '?' || c == '#' || c == '@') return 0;
    if (c == ':' && p[0] != '[') colon = i;
    if (c == ']') colon = len;
    if (c == ':' && p[0] == '[' && i > 0 && p[i - 1] == ']') colon = i;
  }
  if (colon == 0) return 0;
  if (colon == len) return !port_required;
  if (colon + 1 == len) return !port_required;
  for (size_t i = colon + 1; i < len; i++)
    if (p[i] < '0' || p[i] > '9') return 0;
  return 1;
}

static int parse_request_line(const char *p, size_t len, uma_request *req) {
  size_t i = 0;
  while (i < len && is_tchar((unsigned char)p[i])) i++;
  if (i == 0 || i >= len || p[i] != ' ') return UMA_E400;
  req->method = mk(p, i);
  i++;
  size_t t0 = i;
  while (i < len && p[i] != ' ') {
    unsigned char c = (unsigned char)p[i];
    if (c < 0x21 || c > 0x7e) return UMA_E400;
    i++;
  }
  if (i == t0 || i >= len) return UMA_E400;
  req->target = mk(p + t0, i - t0);
  i++;
  const char *v = p + i;
  size_t vlen = len - i;
  if (slice_eq(v, vlen, "HTTP/1.1")) req->version_minor = 1;
  else if (slice_eq(v, vlen, "HTTP/1.0")) req->version_minor = 0;
  else if (vlen == 8 && memcmp(v, "HTTP/", 5) == 0 && v[5] >= '0' && v[5] <= '9' &&
           v[6] == '.' && v[7] >= '0' && v[7] <= '9')
    return UMA_E505;
  else
    return UMA_E400;

  const char *t = req->target.ptr;
  size_t tlen = req->target.len;
  int connect = slice_eq(req->method.ptr, req->method.len, "CONNECT");
  for (size_t k = 0; k < tlen; k++)
    if (t[k] == '#') return UMA_E400;
  if (connect) {
    if (!valid_authority(t, tlen, 1)) return UMA_E400;
    req->authority = req->target;
    return 0;
  }
  if (tlen == 1 && t[0] == '*') {
    if (!slice_eq(req->method.ptr, req->method.len, "OPTIONS")) return UMA_E400;
    req->path = req->target;
    return 0;
  }
  const char *rest;
  size_t rlen;
  if (t[0] == '/') {
    rest = t;
    rlen = tlen;
  } else {
    size_t s;
    if (tlen > 7 && slice_ieq(t, 7, "http://")) s = 7;
    else if (tlen > 8 && slice_ieq(t, 8, "https://")) s = 8;
    else return UMA_E400;
    size_t a = s;
    while (a < tlen && t[a] != '/' && t[a] != '?') a++;
    if (!valid_authority(t + s, a - s, 0)) return UMA_E400;
    req->authority = mk(t + s, a - s);
    rest = t + a;
    rlen = tlen - a;
  }
  size_t q = 0;
  while (q < rlen && rest[q] != '?') q++;
  req->path = q ? mk(rest, q) : mk(root_path, 1);
  if (q < rlen) req->query = mk(rest + q + 1, rlen - q - 1);
  return 0;
}

/* A header line [p, p + len) without its CRLF. */
static int parse_header_line(const char *p, size_t len, uma_header *h) {
  if (is_ows((unsigned char)p[0])) return UMA_E400; /* obs-fold */
  size_t i = 0;
  while (i < len && is_tchar((unsigned char)p[i])) i++;
  if (i == 0 || i >= len || p[i] != ':') return UMA_E400;
  h->name = mk(p, i);
  i++;
  for (size_t k = i; k < len; k++) {
    unsigned char c = (unsigned char)p[k];
    if ((c < 0x20 && c != '\t') || c == 0x7f) return UMA_E400;
  }
  while (i < len && is_ows((unsigned char)p[i])) i++;
  size_t e = len;
  while (e > i && is_ows((unsigned char)p[e - 1])) e--;
  h->value = mk(p + i, e - i);
  return 0;
}

/* Iterates the elements of a comma list: returns 1 and sets *el, *ellen
 * (trimmed, may be empty) while there are any. */
static int list_next(const char *p, size_t len, size_t *pos, const char **el, size_t *ellen) {
  if (*pos > len) return 0;
  size_t s = *pos, e = s;
  while (e < len && p[e] != ',') e++;
  *pos = e + 1;
  while (s < e && is_ows((unsigned char)p[s])) s++;
  size_t t = e;
  while (t > s && is_ows((unsigned char)p[t - 1])) t--;
  *el = p + s;
  *ellen = t - s;
  return 1;
}

static int parse_content_length(const uma_slice *v, int64_t *out) {
  size_t pos = 0;
  const char *el;
  size_t ellen;
  int seen = 0;
  while (list_next(v->ptr, v->len, &pos, &el, &ellen)) {
    if (ellen == 0) return UMA_E400;
    uint64_t n = 0;
    for (size_t i = 0; i < ellen; i++) {
      if (el[i] < '0' || el[i] > '9') return UMA_E400;
      if (n > ((uint64_t)INT64_MAX - (uint64_t)(el[i] - '0')) / 10) return UMA_E400;
      n = n * 10 + (uint64_t)(el[i] - '0');
    }
    if (*out >= 0 && (uint64_t)*out != n) return UMA_E400;
    *out = (int64_t)n;
    seen = 1;
  }
  return seen ? 0 : UMA_E400;
}

typedef struct {
  int present;
  int chunked_count;
  int last_chunked;
  int last_known;
} te_state;

static int parse_transfer_encoding(const uma_slice *v, te_state *te) {
  size_t pos = 0;
  const char *el;
  size_t ellen;
  int any = 0;
  while (list_next(v->ptr, v->len, &pos, &el, &ellen)) {
    if (ellen == 0) continue; /* empty list elements are allowed */
    size_t n = 0;
    while (n < ellen && is_tchar((unsigned char)el[n])) n++;
    if (n == 0) return UMA_E400;
    if (n < ellen) {
      size_t k = n;
      while (k < ellen && is_ows((unsigned char)el[k])) k++;
      if (k >= ellen || el[k] != ';') return UMA_E400; /* parameters only */
    }
    any = 1;
    te->present = 1;
    if (slice_ieq(el, n, "chunked")) {
      if (n < ellen) return UMA_E400; /* chunked takes no parameters */
      te->chunked_count++;
      te->last_chunked = 1;
      te->last_known = 1;
    } else {
      te->last_chunked = 0;
      te->last_known = slice_ieq(el, n, "gzip") || slice_ieq(el, n, "deflate") ||
                       slice_ieq(el, n, "compress") || slice_ieq(el, n, "identity") ||
                       slice_ieq(el, n, "x-gzip") || slice_ieq(el, n, "x-compress");
    }
  }
  return any ? 0 : UMA_E400;
}

static int finish_head(uma_request *req) {
  int host_count = 0, cl_seen = 0, connection_close = 0, connection_keep = 0;
  te_state te = {0, 0, 0, 0};
  for (size_t i = 0; i < req->header_count; i++) {
    uma_header *h = &req->headers[i];
    const char *n = h->name.ptr;
    size_t nl = h->name.len;
    int rc;
    if (slice_ieq(n, nl, "host")) {
      host_count++;
      req->host = h->value;
    } else if (slice_ieq(n, nl, "content-length")) {
      cl_seen = 1;
      if ((rc = parse_content_length(&h->value, &req->content_length))) return rc;
    } else if (slice_ieq(n, nl, "transfer-encoding")) {
      if ((rc = parse_transfer_encoding(&h->value, &te))) return rc;
    } else if (slice_ieq(n, nl, "connection")) {
      size_t pos = 0;
      const char *el;
      size_t ellen;
      while (list_next(h->value.ptr, h->value.len, &pos, &el, &ellen)) {
        if (slice_ieq(el, ellen, "close")) connection_close = 1;
        else if (slice_ieq(el, ellen, "keep-alive")) connection_keep = 1;
      }
    } else if (slice_ieq(n, nl, "expect")) {
      if (slice_ieq(h->value.ptr, h->value.len, "100-continue")) req->expect_continue = 1;
    }
  }
  if (req->version_minor == 1 ? host_count != 1 : host_count > 1) return UMA_E400;
  if (te.present) {
    if (req->version_minor == 0) return UMA_E400;
    if (cl_seen) return UMA_E400;
    if (te.chunked_count > 1) return UMA_E400;
    if (!te.last_chunked) return te.last_known || te.chunked_count ? UMA_E400 : UMA_E501;
    req->chunked = 1;
  }
  if (req->version_minor == 1) req->keep_alive = !connection_close;
  else req->keep_alive = connection_keep && !connection_close;
  return 0;
}

int64_t uma_parse_head(const char *buf, size_t len, const uma_limits *limits, uma_request *req) {
  memset(req, 0, offsetof(uma_request, headers));
  req->header_count = 0;
  req->host = mk(NULL, 0);
  req->content_length = -1;
  req->chunked = req->expect_continue = req->keep_alive = 0;

  size_t max_head = limits->max_head;
  size_t max_headers = limits->max_headers < UMA_MAX_HEADERS ? limits->max_headers : UMA_MAX_HEADERS;
  size_t pos = 0;

  /* Leading empty lines. */
  while (pos < len && buf[pos] == '\r') {
    if (pos + 1 >= len) return len > max_head ? UMA_E431 : UMA_INCOMPLETE;
    if (buf[pos + 1] != '\n') return UMA_E400;
    pos += 2;
    if (pos > max_head) return UMA_E431;
  }
  if (pos < len && buf[pos] == '\n') return UMA_E400;

  /* The request line. */
  const char *line = buf + pos;
  const char *nl = memchr(line, '\n', len - pos);
  if (!nl) {
    size_t seen = len - pos;
    if (seen && buf[len - 1] == '\r') seen--;
    if (seen > limits->max_request_line) return UMA_E414;
    return len > max_head ? UMA_E431 : UMA_INCOMPLETE;
  }
  {
    size_t llen = (size_t)(nl - line);
    int crlf = llen > 0 && line[llen - 1] == '\r';
    if (crlf) llen--;
    if (llen > limits->max_request_line) return UMA_E414;
    if ((size_t)(nl - buf) + 1 > max_head) return UMA_E431;
    if (!crlf) return UMA_E400;
    int rc = parse_request_line(line, llen, req);
    if (rc) return rc;
    pos = (size_t)(nl - buf) + 1;
  }

  /* Header fields up to the empty line. */
  for (;;) {
    if (pos >= len) return len > max_head ? UMA_E431 : UMA_INCOMPLETE;
    if (buf[pos] == '\r') {
      if (pos + 1 >= len) return len > max_head ? UMA_E431 : UMA_INCOMPLETE;
      if (buf[pos + 1] != '\n') return UMA_E400;
      pos += 2;
      if (pos > max_head) return UMA_E431;
      break;
    }
    if (buf[pos] == '\n') return UMA_E400;
    if (req->header_count >= max_headers) return UMA_E431;
    line = buf + pos;
    nl = memchr(line, '\n', len - pos);
    if (!nl) return len > max_head ? UMA_E431 : UMA_INCOMPLETE;
    if ((size_t)(nl - buf) + 1 > max_head) return UMA_E431;
    size_t llen = (size_t)(nl - line);
    if (llen == 0 || line[llen - 1] != '\r') return UMA_E400;
    llen--;
    if (llen == 0) return UMA_E400;
    int rc = parse_header_line(line, llen, &req->headers[req->header_count]);
    if (rc) return rc;
    req->header_count++;
    pos = (size_t)(nl - buf) + 1;
  }

  int rc = finish_head(req);
  if (rc) return rc;
  return (int64_t)pos;
}

/* The chunked decoder. */
enum {
  CH_SIZE = 0,  /* hex digits of a chunk size */
  CH_EXT,       /* after the size: BWS and extensions up to CR */
  CH_SIZE_LF,   /* LF after the size line */
  CH_DATA,      /* chunk data */
  CH_DATA_CR,   /* CR after the data */
  CH_DATA_LF,   /* LF after the data */
  CH_TR_START,  /* start of a trailer line (or the final CRLF) */
  CH_TR_NAME,   /* a trailer field name */
  CH_TR_VALUE,  /* a trailer field value up to CR */
  CH_TR_LF,     /* LF after a trailer line */
  CH_FINAL_LF,  /* LF of the final CRLF */
  CH_DONE
};

void uma_chunked_init(uma_chunked *dec) {
  memset(dec, 0, sizeof(*dec));
  dec->state = CH_SIZE;
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c |= 0x20;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

static int is_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

int uma_chunked_decode(uma_chunked *dec, char *buf, size_t *len, size_t *consumed) {
  size_t in = *len, i = 0, out = 0;
  int rc = 0;
  while (i < in && dec->state != CH_DONE) {
    unsigned char c = (unsigned char)buf[i];
    /* Every byte of the trailer section counts against its bound. */
    if (dec->state >= CH_TR_START && dec->state <= CH_TR_LF && ++dec->trailer_len > UMA_CHUNK_MAX_TRAILER) {
      rc = UMA_E400;
      goto end;
    }
    switch (dec->state) {
    case CH_SIZE: {
      int h = hexval(c);
      if (h >= 0) {
        if (dec->chunk_left > ((uint64_t)INT64_MAX >> 4)) { rc = UMA_E400; goto end; }
        dec->chunk_left = (dec->chunk_left << 4) | (uint64_t)h;
        dec->line_len++;
        i++;
        break;
      }
      if (dec->line_len == 0) { rc = UMA_E400; goto end; }
      if (c == '\r') dec->state = CH_SIZE_LF;
      else if (c == ';' || is_ows(c)) { dec->state = CH_EXT; dec->ext_len = 1; }
      else { rc = UMA_E400; goto end; }
      i++;
      break;
    }
    case CH_EXT:
      if (c == '\r') { dec->state = CH_SIZE_LF; i++; break; }
      if (is_ctl(c)) { rc = UMA_E400; goto end; }
      if (++dec->ext_len > UMA_CHUNK_MAX_EXT) { rc = UMA_E400; goto end; }
      i++;
      break;
    case CH_SIZE_LF:
      if (c != '\n') { rc = UMA_E400; goto end; }
      i++;
      dec->line_len = 0;
      dec->ext_len = 0;
      dec->state = dec->chunk_left ? CH_DATA : CH_TR_START;
      break;
    case CH_DATA: {
      size_t n = in - i;
      if ((uint64_t)n > dec->chunk_left) n = (size_t)dec->chunk_left;
      memmove(buf + out, buf + i, n);
      out += n;
      i += n;
      dec->chunk_left -= n;
      if (dec->chunk_left == 0) dec->state = CH_DATA_CR;
      break;
    }
    case CH_DATA_CR:
      if (c != '\r') { rc = UMA_E400; goto end; }
      dec->state = CH_DATA_LF;
      i++;
      break;
    case CH_DATA_LF:
      if (c != '\n') { rc = UMA_E400; goto end; }
      dec->state = CH_SIZE;
      i++;
      break;
    case CH_TR_START:
      if (c == '\r') dec->state = CH_FINAL_LF;
      else if (is_tchar(c)) dec->state = CH_TR_NAME;
      else { rc = UMA_E400; goto end; } /* bare LF, obs-fold, junk */
      i++;
      break;
    case CH_TR_NAME:
      if (c == ':') dec->state = CH_TR_VALUE;
      else if (!is_tchar(c)) { rc = UMA_E400; goto end; }
      i++;
      break;
    case CH_TR_VALUE:
      if (c == '\r') dec->state = CH_TR_LF;
      else if (is_ctl(c)) { rc = UMA_E400; goto end; }
      i++;
      break;
    case CH_TR_LF:
      if (c != '\n') { rc = UMA_E400; goto end; }
      dec->state = CH_TR_START;
      i++;
      break;
    case CH_FINAL_LF:
      if (c != '\n') { rc = UMA_E400; goto end; }
      dec->state = CH_DONE;
      dec->done = 1;
      i++;
      break;
    default:
      rc = UMA_E400;
      goto end;
    }
  }
end:
  *len = out;
  *consumed = i;
  return rc;
}
