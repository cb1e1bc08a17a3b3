# frozen_string_literal: true

module Uma
  class HTTPError
    # An error for a status the server decides on (413, 500...).
    def self.for_status(status)
      error = new("#{status} #{Response::REASONS.fetch(status, "Error")}")
      error.instance_variable_set(:@status, status)
      error
    end
  end

  # Writes Rack responses: the status line and header fields (checked),
  # then the body with the framing the request allows.
  module Response
    REASONS = {
      100 => "Continue", 101 => "Switching Protocols", 103 => "Early Hints",
      200 => "OK", 201 => "Created", 202 => "Accepted", 204 => "No Content",
      206 => "Partial Content", 301 => "Moved Permanently", 302 => "Found",
      303 => "See Other", 304 => "Not Modified", 307 => "Temporary Redirect",
      308 => "Permanent Redirect", 400 => "Bad Request", 401 => "Unauthorized",
      403 => "Forbidden", 404 => "Not Found", 405 => "Method Not Allowed",
      408 => "Request Timeout", 409 => "Conflict", 411 => "Length Required",
      413 => "Content Too Large", 414 => "URI Too Long", 415 => "Unsupported Media Type",
      422 => "Unprocessable Content", 429 => "Too Many Requests",
      431 => "Request Header Fields Too Large", 500 => "Internal Server Error",
      501 => "Not Implemented", 502 => "Bad Gateway", 503 => "Service Unavailable",
      505 => "HTTP Version Not Supported"
    }.freeze

    STATUS_LINES = Hash.new do |h, status|
      h[status] = "HTTP/1.1 #{status} #{REASONS.fetch(status, "Unknown")}\r\n".b.freeze
    end

    # A head for the status and headers (Response.build_head, in C). Raises
    # HTTPError (500) for a header the server must not send. The framing
    # fields are added by the caller in extra.
    def self.head(status, headers, extra)
      build_head(STATUS_LINES[status], headers, extra)
    end

    # Status codes that never have a body.
    def self.bodyless?(status) = status < 200 || status == 204 || status == 304
  end
end
