# frozen_string_literal: true

require "fcntl"
require "socket"

module Uma
  # One client connection in its own fiber: reads request heads, calls the
  # app, writes responses in order (keep-alive and pipelining), then closes.
  class Connection
    RECV = 65_536
    # What a read waiting for the next request asks for (see wait_request).
    IDLE_RECV = 1024
    # Files up to this size are read and sent with the head in one send;
    # larger ones go from the file to the socket through a pipe (splice),
    # never through Ruby strings.
    SMALL_FILE = 65_536
    PIPE_SIZE = 1_048_576
    # Responses held back for pipelined requests are sent at this size.
    OUT_MAX = 65_536
    ERROR_FIELDS = "connection: close\r\ncontent-length: 0\r\n"
    # What ends a connection quietly: the client went away, or the server
    # stops or gave up waiting.
    CLOSED = [Stop, Timeout, EOFError, IOError, Errno::ECONNRESET, Errno::EPIPE, Errno::ECANCELED,
              Errno::EBADF].freeze

    attr_reader :fiber

    def initialize(server, fd)
      @server = server
      @machine = server.machine
      @config = server.config
      @fd = fd
      @buf = "".b
      @parser = Parser.new(max_request_line: @config.max_request_line, max_head: @config.max_head,
                           max_headers: @config.max_headers)
      @hijacked = false
      @idle = false
      @deadline = nil
      @timed_out = false
      @stopped = false
      @out = "".b
      @fiber = Fiber.current
      @remote_addr = Uma.peer_ip(fd)
      # Made once per connection, not per request.
      @hijack = -> { hijack_io }
      @early_hints = ->(headers) { early_hints(headers) }
    end

    # Serves requests until the client closes, an error, or the server stops.
    def run
      loop do
        env = read_request
        break unless env
        break unless serve(env) && !@server.stopping?
      end
    rescue HTTPError => e
      begin
        write_raw(Response::STATUS_LINES[e.status], ERROR_FIELDS, "\r\n")
      rescue *CLOSED
        nil
      end
    rescue *CLOSED
      nil
    ensure
      @server.connection_done(self)
      close_pipe
      unless @hijacked
        flush_quietly
        @machine.close(@fd)
      end
    end

    # Whether the connection waits for a next request (a graceful stop ends it).
    def idle? = @idle

    # Called by the server's watch fiber: a read waiting past its deadline
    # ends with the socket shut down (the read sees EOF and the fiber ends
    # with Timeout). A shutdown, not an exception scheduled into the fiber:
    # a read that completed meanwhile would carry the exception on into
    # the app's next wait.
    def check_deadline(now)
      return unless @deadline && now > @deadline

      @deadline = nil
      @timed_out = true
      @machine.shutdown(@fd, Socket::SHUT_RDWR)
    rescue SystemCallError
      nil
    end

    # Ends the connection's fiber with Stop (once: a second raise could land
    # in its ensure).
    def stop
      return if @stopped || !@fiber.alive?

      @stopped = true
      @machine.schedule(@fiber, Stop.new)
    end

    # Writes bytes as they are (everything, or raises), after any response
    # held back.
    def write_raw(*parts)
      if @out.empty?
        @machine.sendv(@fd, *parts)
      else
        @machine.sendv(@fd, @out, *parts)
        @out.clear
      end
    end

    # Writes a whole response; while the next pipelined request is already
    # buffered, holds it back to go out with the next responses in one send
    # (at the latest before the connection waits for more bytes).
    def write_response(*parts)
      if @buf.empty? || @out.bytesize >= OUT_MAX
        write_raw(*parts)
      else
        parts.each { |part| @out << part }
      end
    end

    # Up to max bytes of the body: what is buffered, else one receive.
    def take_body(max)
      fill(Uma.now + @config.body_timeout) if @buf.empty?
      data = @buf.byteslice(0, max)
      @buf = @buf.byteslice(data.bytesize..)
      data
    end

    # Gives back bytes read past the body (the next pipelined request).
    def unread(data)
      @buf = data + @buf unless data.empty?
    end

    private

    # The next request's env, or nil when the client closed between requests.
    # The head timeout counts from its first bytes, for the whole head (a
    # client sending a byte at a time cannot stretch it). The env is made
    # only once bytes are there: an idle connection holds none.
    def read_request
      return nil if @buf.empty? && !wait_request

      env = @server.base_env.dup
      head_deadline = nil
      until (len = @parser.parse(@buf, env))
        head_deadline ||= Uma.now + @config.head_timeout
        fill(head_deadline)
      end
      @buf = @buf.byteslice(len..)
      env
    end

    # Waits for the next request's first bytes; false when the client closed
    # or the server stops. The read asks for IDLE_RECV bytes only, so an
    # idle connection's pending read holds a small buffer, not a RECV-sized
    # one.
    def wait_request
      @idle = true
      return false if @server.stopping?

      got = fill(Uma.now + @config.idle_timeout, eof_ok: true, max: IDLE_RECV)
      top_up if got && @buf.bytesize >= IDLE_RECV
      got
    ensure
      @idle = false
    end

    # The small read came back full: takes what else has already arrived,
    # without waiting, up to the RECV bytes one read used to take. (A refusal, 413 or
    # 431, closes the connection: bytes left unread there would turn the
    # close into a reset that can destroy the response before the client
    # reads it.)
    def top_up
      more = "".b
      @buf << more if @machine.recv(@fd, more, RECV - IDLE_RECV, UM::MSG_DONTWAIT).positive?
    rescue Errno::EAGAIN
      nil
    end

    # Receives more bytes into the buffer by the deadline (a monotonic time;
    # see check_deadline). At EOF: false when eof_ok, else EOFError.
    def fill(deadline, eof_ok: false, max: RECV)
      flush
      @deadline = deadline
      n = @machine.read(@fd, @buf, max, -1)
      raise Timeout, "read timed out" if @timed_out
      return true if n.positive?
      raise EOFError, "client closed" unless eof_ok

      false
    ensure
      @deadline = nil
    end

    # Sends the responses held back, if any.
    def flush
      write_raw unless @out.empty?
    end

    def flush_quietly
      flush
    rescue *CLOSED
      nil
    end

    # One request: returns whether the connection may serve another.
    def serve(env)
      keep = @parser.keep_alive?
      length = @parser.content_length
      max = @config.max_body
      raise HTTPError.for_status(413) if max && length && length > max

      chunked = @parser.chunked?
      expect = @parser.expect_continue? && env["SERVER_PROTOCOL"] == "HTTP/1.1"
      if chunked || expect || (length && length.positive?)
        input = Input.new(self, length, chunked, max)
        input.expect_continue! if expect
      else
        input = EMPTY_INPUT
      end
      @env = env
      env["rack.input"] = input
      env["REMOTE_ADDR"] = @remote_addr if @remote_addr
      env["rack.hijack"] = @hijack
      env["rack.early_hints"] = @early_hints
      finished = env["rack.response_finished"] = []
      status = headers = error = nil
      @head_sent = false
      begin
        status, headers, body = @server.app.call(env)
        return false if @hijacked

        keep = respond(env, status, headers, body, keep)
      rescue HTTPError, *CLOSED
        raise
      rescue StandardError, ScriptError => e
        error = e
        @server.report(env, e)
        internal_error(e) unless @hijacked || @head_sent
        keep = false
      ensure
        finished.reverse_each do |callback|
          callback.call(env, status, headers, error)
        rescue => e
          @server.report(env, e)
        end
      end
      return false if @hijacked || !keep

      # The next request starts after this one's body.
      if !input.finished? && expect && !input.continue_sent?
        false
      else
        input.drain
        true
      end
    end

    def internal_error(error)
      body = @server.development? ? "#{error.class}: #{error.message}\n" : "Internal Server Error\n"
      write_raw(Response::STATUS_LINES[500], "content-type: text/plain\r\ncontent-length: #{body.bytesize}\r\n" \
                "connection: close\r\ndate: #{Date.httpdate}\r\n\r\n", body)
    end

    def hijack_io
      @hijacked = true
      io = BasicSocket.for_fd(@fd)
      io.autoclose = true
      io
    end

    def early_hints(headers)
      return unless @env["SERVER_PROTOCOL"] == "HTTP/1.1"

      write_raw(Response.head(103, headers, ""))
    end

    # Writes the response; returns whether keep-alive may go on.
    def respond(env, status, headers, body, keep)
      http11 = env["SERVER_PROTOCOL"] == "HTTP/1.1"
      no_body = Response.bodyless?(status) || env["REQUEST_METHOD"] == "HEAD"
      extra = +"date: #{Date.httpdate}\r\n"

      if (hijack = headers["rack.hijack"])
        send_head(status, headers, extra << "connection: close\r\n")
        @hijacked = true
        hijack.call(hijack_io)
        return false
      end

      if body.respond_to?(:to_ary)
        parts = body.to_ary
        unless headers.key?("content-length") || Response.bodyless?(status)
          extra << "content-length: #{parts.sum(&:bytesize)}\r\n"
        end
        extra << "connection: close\r\n" unless keep
        head = Response.head(status, headers, extra)
        @head_sent = true
        no_body ? write_response(head) : write_response(head, *parts)
      elsif body.respond_to?(:to_path)
        keep = respond_file(status, headers, body.to_path, extra, keep, no_body)
      elsif body.respond_to?(:each)
        keep = stream_each(status, headers, body, extra, keep, http11, no_body)
      else
        # A streaming body: the head, then the app writes to the connection.
        send_head(status, headers, extra << "connection: close\r\n")
        body.call(Stream.new(self)) unless no_body
        keep = false
      end
      keep
    ensure
      body.close if body.respond_to?(:close)
    end

    def stream_each(status, headers, body, extra, keep, http11, no_body)
      chunked = false
      if !headers.key?("content-length") && !no_body
        if http11 && keep
          extra << "transfer-encoding: chunked\r\n"
          chunked = true
        else
          keep = false
        end
      end
      extra << "connection: close\r\n" unless keep
      send_head(status, headers, extra)
      if no_body
        body.each { |_| nil }
      elsif chunked
        body.each do |chunk|
          next if chunk.empty?

          write_raw("#{chunk.bytesize.to_s(16)}\r\n", chunk, "\r\n")
        end
        write_raw("0\r\n\r\n")
      else
        body.each { |chunk| write_raw(chunk) unless chunk.empty? }
      end
      keep
    end

    def send_head(status, headers, extra)
      write_raw(Response.head(status, headers, extra))
      @head_sent = true
    end

    # A to_path body: the head with the file's length, then the file.
    # Returns whether keep-alive may go on (not when the file shrank).
    def respond_file(status, headers, path, extra, keep, no_body)
      fd = @machine.open(path, UM::O_RDONLY)
      size = @machine.statx(fd, "", UM::AT_EMPTY_PATH, UM::STATX_SIZE)[:size]
      extra << "content-length: #{size}\r\n" unless headers.key?("content-length")
      extra << "connection: close\r\n" unless keep
      head = Response.head(status, headers, extra)
      @head_sent = true
      if no_body || size.zero?
        write_response(head)
      elsif size <= SMALL_FILE
        data = read_file(fd, size)
        write_response(head, data)
        keep &&= data.bytesize == size
      else
        write_raw(head)
        keep &&= splice_file(fd, size)
      end
      keep
    ensure
      @machine.close(fd) if fd
    end

    # Up to size bytes of the file (fewer if it shrank).
    def read_file(fd, size)
      data = +""
      while data.bytesize < size
        break if @machine.read(fd, data, size - data.bytesize, -1).zero?
      end
      data
    end

    # Sends size bytes of the file through the connection's pipe; false when
    # the file ended early.
    def splice_file(fd, size)
      pipe_r, pipe_w = pipe
      left = size
      while left.positive?
        n = @machine.splice(fd, pipe_w, [left, PIPE_SIZE].min)
        return false if n.zero?

        sent = 0
        sent += @machine.splice(pipe_r, @fd, n - sent) while sent < n
        left -= n
      end
      true
    end

    # The connection's pipe for splice, made at its first large file.
    def pipe
      @pipe ||= begin
        r, w = UM.pipe
        grow_pipe(w)
        [r, w]
      end
    end

    # A larger pipe moves a large file in fewer splices (the default is
    # 64 KiB; beyond fs.pipe-max-size the kernel refuses, and it stays).
    def grow_pipe(fd)
      IO.for_fd(fd, autoclose: false).fcntl(Fcntl::F_SETPIPE_SZ, PIPE_SIZE)
    rescue SystemCallError
      nil
    end

    def close_pipe
      @pipe&.each { |fd| @machine.close(fd) }
      @pipe = nil
    end
  end

  # The object a streaming (callable) body writes to.
  class Stream
    def initialize(connection)
      @connection = connection
      @closed = false
    end

    # Sends +data+ (anything with #to_s) to the client; returns its bytesize.
    def write(data)
      data = data.to_s
      @connection.write_raw(data) unless data.empty?
      data.bytesize
    end

    # Like #write; returns self.
    def <<(data)
      write(data)
      self
    end

    # Reading is not offered on this stream: always nil.
    def read(length = nil, buffer = nil) = nil

    # Nothing is held back: returns self.
    def flush = self

    # Nothing to close for reading.
    def close_read; end

    # Ends the response, as #close.
    def close_write = close

    # Ends the response: the connection finishes it after the body returns.
    def close
      @closed = true
    end

    # Whether #close was called.
    def closed? = @closed
  end
end
