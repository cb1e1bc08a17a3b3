/* What the binding files of Uma's extension share. */
#ifndef UMA_EXT_H
#define UMA_EXT_H

#include <ruby.h>

extern VALUE mUma;
extern VALUE eUmaHTTPError;

/* Raises Uma::HTTPError for an HTTP status (400, 414, 431, 501, 505). */
NORETURN(void uma_raise_status(int status));

void uma_parser_class_init(void);
void uma_chunked_class_init(void);
void uma_response_class_init(void);
void uma_peer_class_init(void);

#endif
