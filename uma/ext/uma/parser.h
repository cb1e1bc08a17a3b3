/* Uma's HTTP/1.1 request parser: plain C over a byte range, no Ruby.
 *
 * The head parser is resumable the simple way (as picohttpparser): the
 * caller keeps the bytes received so far and calls again with more; a call
 * never reads past buf + len and keeps no pointer into the buffer after it
 * returns other than the slices in the request it filled.
 *
 * The chunked decoder is a state machine that decodes in place across any
 * number of calls, each given the next piece of the body.
 */
#ifndef UMA_PARSER_H
#define UMA_PARSER_H

#include <stddef.h>
#include <stdint.h>

#define UMA_MAX_HEADERS 100

/* Results of uma_parse_head (negative HTTP status on a refusal). */
#define UMA_INCOMPLETE 0
#define UMA_E400 (-400)
#define UMA_E414 (-414)
#define UMA_E431 (-431)
#define UMA_E501 (-501)
#define UMA_E505 (-505)

typedef struct {
  const char *ptr;
  size_t len;
} uma_slice;

typedef struct {
  uma_slice name;  /* as sent (case kept); a token */
  uma_slice value; /* leading and trailing whitespace removed */
} uma_header;

typedef struct {
  size_t max_request_line; /* default 8192: longer gives 414 */
  size_t max_head;         /* default 65536: longer gives 431 */
  size_t max_headers;      /* default 100 (<= UMA_MAX_HEADERS): more give 431 */
} uma_limits;

typedef struct {
  uma_slice method;
  uma_slice target;    /* as sent */
  uma_slice authority; /* absolute form: its host[:port]; CONNECT: the target; else empty */
  uma_slice path;      /* origin form path (absolute form: the path part, "/" if empty); "*" for OPTIONS * */
  uma_slice query;     /* after '?', without it; empty if none */
  int version_minor;   /* 0 or 1 */
  uma_header headers[UMA_MAX_HEADERS];
  size_t header_count;
  uma_slice host;         /* the Host field's value (empty if none) */
  int64_t content_length; /* -1 when there is no Content-Length */
  int chunked;            /* Transfer-Encoding whose final coding is chunked */
  int expect_continue;    /* Expect: 100-continue */
  int keep_alive;         /* after this request, per version and Connection */
} uma_request;

/* Fills limits with the defaults above. */
void uma_limits_default(uma_limits *limits);

/* Parses one request head at buf[0, len). Returns the head's length in
 * bytes (> 0, the blank line included) when complete, UMA_INCOMPLETE when
 * more bytes are needed (and none of the limits is already passed), or a
 * negative status (UMA_E400...) when the request must be refused and the
 * connection closed. Leading empty lines (RFC 9112 2.2) are skipped. */
int64_t uma_parse_head(const char *buf, size_t len, const uma_limits *limits, uma_request *req);

/* The chunked body decoder. */
typedef struct {
  int state;
  uint64_t chunk_left;  /* data bytes left in the current chunk */
  size_t ext_len;       /* bytes of chunk extension seen (bounded) */
  size_t trailer_len;   /* bytes of trailer section seen (bounded) */
  size_t line_len;      /* bytes of the current size line */
  int done;             /* the final chunk and trailers were consumed */
} uma_chunked;

#define UMA_CHUNK_MAX_EXT 4096
#define UMA_CHUNK_MAX_TRAILER 16384

void uma_chunked_init(uma_chunked *dec);

/* Decodes buf[0, *len) in place: on return buf[0, *len) holds the body
 * bytes found, and *consumed the input bytes used (less than the input only
 * once the message is done: the rest belongs to the next request).
 * Returns 0 on success (dec->done tells whether the body ended), UMA_E400 on
 * malformed framing (bad hex, overflow, missing CRLF, extension or trailers
 * too long). */
int uma_chunked_decode(uma_chunked *dec, char *buf, size_t *len, size_t *consumed);

#endif
