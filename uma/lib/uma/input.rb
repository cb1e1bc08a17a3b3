# frozen_string_literal: true

module Uma
  # rack.input: the request body, read lazily from the connection (plain
  # with a Content-Length, or chunked and decoded). Binary; #gets, #read,
  # #each, #close as Rack 3 asks (no rewind).
  class Input
    CHUNK = 65_536

    def initialize(connection, length, chunked, max_body)
      @connection = connection
      @left = length || 0          # plain body bytes still on the wire
      @decoder = chunked ? ChunkedDecoder.new : nil
      @max_body = max_body
      @total = 0
      @pending = "".b              # decoded bytes not yet handed out
      @continue = false
    end

    # read(nil) reads to the end; read(n) up to n bytes (nil at the end).
    def read(length = nil, buffer = nil)
      if length
        raise ArgumentError, "negative length #{length} given" if length.negative?
        fill(length)
        data = @pending.byteslice(0, length)
        @pending = @pending.byteslice(length..) || "".b
        data = nil if data.empty? && length.positive?
      else
        fill(nil)
        data = @pending
        @pending = "".b
      end
      return data unless buffer

      buffer.replace(data || "")
      data && buffer
    end

    # The next line, with its "\n", or nil at the end of the body.
    def gets
      loop do
        if (i = @pending.index("\n"))
          line = @pending.byteslice(0, i + 1)
          @pending = @pending.byteslice((i + 1)..)
          return line
        end
        return (@pending.empty? ? nil : read) if finished?
        more
      end
    end

    # Yields the body in chunks as they arrive.
    def each
      while (chunk = read(CHUNK))
        yield chunk
      end
    end

    # Does nothing: the connection drains what the app left unread.
    def close; end

    # Whether the whole body has been taken from the wire.
    def finished?
      @decoder ? @decoder.done? : @left.zero?
    end

    # Reads and drops what the app left, so the next request can be read.
    def drain
      until finished?
        more
        @pending.clear
      end
    end

    # Sends 100 Continue before the first read when the client asked.
    def expect_continue!
      @continue = true
    end

    # Whether 100 Continue went out (false: the client may not have sent
    # the body, so the connection cannot be reused).
    def continue_sent? = !@continue

    private

    def fill(length)
      more while !finished? && (length.nil? || @pending.bytesize < length)
    end

    def more
      if @continue
        @continue = false
        @connection.write_raw("HTTP/1.1 100 Continue\r\n\r\n")
      end
      if @decoder
        data = @connection.take_body(CHUNK)
        decoded = @decoder.decode(data)
        @connection.unread(@decoder.remainder) if @decoder.done?
        add(decoded)
      else
        data = @connection.take_body([@left, CHUNK].min)
        @left -= data.bytesize
        add(data)
      end
    end

    def add(data)
      @total += data.bytesize
      raise HTTPError.for_status(413) if @max_body && @total > @max_body

      @pending << data
    end
  end

  # rack.input of a request without a body: one shared, frozen object.
  class EmptyInput
    # The body of a request without one: nil for a length, "" otherwise.
    def read(length = nil, buffer = nil)
      raise ArgumentError, "negative length #{length} given" if length&.negative?

      buffer&.clear
      return nil if length&.positive?

      buffer || "".b
    end

    # No line in an empty body.
    def gets = nil

    # Yields nothing.
    def each; end

    # Nothing to close.
    def close; end

    def finished? = true

    # Nothing to drain.
    def drain; end

    def continue_sent? = true
  end

  # The rack.input of every request without a body.
  EMPTY_INPUT = EmptyInput.new.freeze
end
