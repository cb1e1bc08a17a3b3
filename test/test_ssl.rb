# frozen_string_literal: true

require_relative "ssl_helper"

class SSLTest < UMTestCase
  include SSLTestHelpers

  def teardown
    close_tracked_ios
    super
  end

  # Stock methods after ssl_set_bio

  def test_stock_methods_after_set_bio
    server, client = ssl_pair
    assert_same server, @machine.ssl_set_bio(server)
    s = @machine.spin do
      server.accept
      line = server.gets
      server.puts "echo: #{line.chomp}"
      data = readpartial_full(server, 5)
      server.write "done"
      rest = server.gets # nil: the client closed (close_notify)
      [line, data, rest]
    end
    c = @machine.spin do
      client.connect
      client.puts "hello"
      reply = client.gets
      client.write("abc", "de")
      done = client.readpartial(100)
      client.close
      [reply, done]
    end
    (line, data, rest), (reply, done) = run_fibers!(s, c)
    assert_equal "hello\n", line
    assert_equal "abcde", data
    assert_nil rest
    assert_equal "echo: hello\n", reply
    assert_equal "done", done
    assert client.closed?
    assert client.to_io.closed?
    assert_equal "TLSv1.3", server.ssl_version
    assert_equal "localhost", client.peer_cert.subject.to_a.assoc("CN")[1]
  end

  def exchange_with_version(version)
    server, client = ssl_pair(server_context(min_version: version, max_version: version),
                              client_context(min_version: version, max_version: version))
    s = @machine.spin do
      server.accept
      server.puts server.gets.upcase
      server.ssl_version
    end
    c = @machine.spin do
      client.connect
      client.puts "over #{version}"
      [client.gets, client.ssl_version]
    end
    server_version, (reply, client_version) = run_fibers!(s, c)
    assert_equal "OVER #{version.to_s.upcase}\n", reply
    [server_version, client_version]
  end

  def test_tls12
    assert_equal %w[TLSv1.2 TLSv1.2], exchange_with_version(:TLS1_2)
  end

  def test_tls13
    assert_equal %w[TLSv1.3 TLSv1.3], exchange_with_version(:TLS1_3)
  end

  def test_version_mismatch_fails_on_both_sides
    server, client = ssl_pair(server_context(min_version: :TLS1_3), client_context(max_version: :TLS1_2))
    s = @machine.spin { server.accept }
    c = @machine.spin { client.connect }
    results = run_fibers(s, c)
    results.each { |r| assert_kind_of OpenSSL::SSL::SSLError, r }
  end

  def test_set_bio_twice
    server, client = ssl_pair
    assert_same server, @machine.ssl_set_bio(server)
    assert_same client, @machine.ssl_set_bio(client)
    handshake(server, client)
    assert_same client, @machine.ssl_set_bio(client)
    s = @machine.spin { server.readpartial(10) }
    c = @machine.spin { client.write("twice") }
    assert_equal ["twice", 5], run_fibers!(s, c)
  end

  def test_set_bio_after_handshake
    server, client = ssl_pair(bio: false)
    # A stock handshake (blocking: the server in a thread).
    thread = Thread.new { server.accept }
    client.connect
    thread.join
    client.puts "before"
    assert_equal "before\n", server.gets

    @machine.ssl_set_bio(server)
    @machine.ssl_set_bio(client)
    s = @machine.spin do
      line = server.gets
      server.write "pong"
      buf = +""
      n = @machine.ssl_read(server, buf, 100)
      [line, n, buf]
    end
    c = @machine.spin do
      client.puts "after"
      reply = client.readpartial(10)
      @machine.ssl_write(client, "direct")
      reply
    end
    (line, n, buf), reply = run_fibers!(s, c)
    assert_equal "after\n", line
    assert_equal "pong", reply
    assert_equal 6, n
    assert_equal "direct", buf
  end

  def test_stock_peer_interoperates
    # Only the client on the ring; the server is a stock socket in a thread.
    server, client = ssl_pair(bio: false)
    @machine.ssl_set_bio(client)
    thread = Thread.new do
      server.accept
      server.puts server.gets.chomp.reverse
      server.close
    end
    c = @machine.spin do
      client.connect
      client.puts "abc"
      [client.gets, client.gets]
    end
    assert_equal ["cba\n", nil], run_fibers!(c)
  ensure
    thread&.join(2)
  end

  # ssl_read / ssl_write

  def test_ssl_read_write_string
    server, client = connected_pair
    s = @machine.spin do
      buf = +"previous contents"
      n1 = @machine.ssl_read(server, buf, 100)
      got1 = buf.dup
      n2 = @machine.ssl_read(server, buf, 3)
      got2 = buf.dup
      rest = ssl_read_full(server, 3)
      [n1, got1, n2, got2, rest]
    end
    c = @machine.spin do
      w1 = @machine.ssl_write(client, "hello world")
      @machine.sleep(0.01)
      w2 = @machine.ssl_write(client, "abcdefgh", 6)
      [w1, w2]
    end
    (n1, got1, n2, got2, rest), (w1, w2) = run_fibers!(s, c)
    assert_equal [11, 6], [w1, w2]
    assert_equal [11, "hello world"], [n1, got1]
    assert_equal [3, "abc"], [n2, got2]
    assert_equal "def", rest
  end

  def test_ssl_read_write_io_buffer
    server, client = connected_pair
    s = @machine.spin do
      buffer = IO::Buffer.new(64)
      n = @machine.ssl_read(server, buffer, 64)
      first = buffer.get_string(0, n)
      n2 = @machine.ssl_read(server, buffer, 64)
      [first, buffer.get_string(0, n2)]
    end
    c = @machine.spin do
      w1 = @machine.ssl_write(client, IO::Buffer.for("from a buffer"))
      @machine.sleep(0.01)
      w2 = @machine.ssl_write(client, IO::Buffer.for("partial buffer"), 7)
      [w1, w2]
    end
    (first, second), (w1, w2) = run_fibers!(s, c)
    assert_equal [13, 7], [w1, w2]
    assert_equal "from a buffer", first
    assert_equal "partial", second
  end

  # A huge maxlen reads what there is; the buffer grows by at most 1 MiB
  # (it grew to 2 GiB and was zeroed first, seconds per call: a fuzz hang).
  def test_ssl_read_huge_maxlen
    server, client = connected_pair
    s = @machine.spin do
      buffer = IO::Buffer.new(64)
      n = @machine.ssl_read(server, buffer, 2**32 + 1)
      [buffer.get_string(0, n), buffer.size]
    end
    c = @machine.spin { @machine.ssl_write(client, "hello") }
    (data, size), = run_fibers!(s, c)
    assert_equal "hello", data
    assert_operator size, :<=, 1 << 20
  end

  def test_ssl_read_zero_maxlen
    server, _client = connected_pair
    buf = +"x"
    assert_equal 0, @machine.ssl_read(server, buf, 0)
  end

  def test_ssl_read_eof_after_close_notify
    server, client = connected_pair
    s = @machine.spin do
      buf = +""
      first = @machine.ssl_read(server, buf, 10)
      [first, buf.dup, @machine.ssl_read(server, buf, 10), @machine.ssl_read(server, buf, 10)]
    end
    c = @machine.spin do
      @machine.ssl_write(client, "last")
      client.close # sends close_notify
    end
    (n, data, eof1, eof2), = run_fibers!(s, c)
    assert_equal [4, "last"], [n, data]
    assert_equal [0, 0], [eof1, eof2]
  end

  def test_ssl_read_eof_when_peer_shuts_down
    server, client = connected_pair
    s = @machine.spin do
      buf = +""
      [@machine.ssl_read(server, buf, 10), buf.dup]
    end
    c = @machine.spin do
      @machine.ssl_write(client, "bye")
      client.to_io.shutdown(:WR) # no close_notify
    end
    (n, buf), = run_fibers!(s, c)
    assert_equal [3, "bye"], [n, buf]
    s = @machine.spin { @machine.ssl_read(server, +"", 10) }
    result = run_fibers(s)
    # An abrupt EOF: 0, or the "unexpected eof" SSLError of OpenSSL 3.
    assert(result == 0 || result.is_a?(OpenSSL::SSL::SSLError), "got #{result.inspect}")
  end

  def test_ssl_read_when_peer_closes_socket
    server, client = connected_pair
    s = @machine.spin { @machine.ssl_read(server, +"", 10) }
    # The client has not read the server's session tickets: closing its
    # socket resets the connection.
    c = @machine.spin { client.to_io.close }
    result, = run_fibers(s, c)
    assert(result == 0 || result.is_a?(OpenSSL::SSL::SSLError) || result.is_a?(Errno::ECONNRESET),
           "got #{result.inspect}")
  end

  def test_ssl_write_to_closed_peer
    server, client = connected_pair
    client.to_io.close
    s = @machine.spin { 20.times { @machine.ssl_write(server, "x" * 65_536) } }
    result = run_fibers(s)
    assert_kind_of SystemCallError, result
    assert_includes [Errno::EPIPE, Errno::ECONNRESET], result.class
  end

  # Large transfers

  def large_transfer(size, chunk)
    server, client = connected_pair
    payloads = [server, client].to_h { |ssl| [ssl, Random.bytes(size)] }
    fibers = [server, client].flat_map do |ssl|
      writer = @machine.spin do
        data = payloads[ssl]
        (0...size).step(chunk) { |off| yield(:write, ssl, data.byteslice(off, chunk)) }
        :written
      end
      reader = @machine.spin do
        data = yield(:read, ssl, size)
        Digest::SHA256.hexdigest(data)
      end
      [writer, reader]
    end
    sw, s_digest, cw, c_digest = run_fibers!(*fibers)
    assert_equal [:written, :written], [sw, cw]
    assert_equal Digest::SHA256.hexdigest(payloads[client]), s_digest
    assert_equal Digest::SHA256.hexdigest(payloads[server]), c_digest
  end

  def test_large_transfer_both_ways_ssl_read_write
    large_transfer(4 << 20, 256 << 10) do |op, ssl, arg|
      op == :write ? @machine.ssl_write(ssl, arg) : ssl_read_full(ssl, arg)
    end
  end

  def test_large_transfer_both_ways_stock_methods
    large_transfer(4 << 20, 100_000) do |op, ssl, arg|
      op == :write ? ssl.write(arg) : readpartial_full(ssl, arg)
    end
  end

  def test_large_single_write
    server, client = connected_pair
    data = Random.bytes(4 << 20)
    s = @machine.spin { @machine.ssl_write(server, data) }
    c = @machine.spin { ssl_read_full(client, data.bytesize) }
    written, received = run_fibers!(s, c)
    assert_equal data.bytesize, written
    assert_equal Digest::SHA256.digest(data), Digest::SHA256.digest(received)
  end

  # Many connections

  def test_many_concurrent_connections
    count = 50
    fibers = Array.new(count) do |i|
      server, client = ssl_pair
      s = @machine.spin do
        server.accept
        3.times { server.puts "#{server.gets.chomp}:#{i}" }
        server.close
        :server_done
      end
      c = @machine.spin do
        client.connect
        replies = Array.new(3) do |j|
          client.puts "msg#{j}"
          client.gets.chomp
        end
        replies << client.gets # nil after close_notify
        client.close
        replies
      end
      [s, c]
    end
    results = run_fibers!(*fibers.flatten)
    results.each_slice(2).with_index do |(s, c), i|
      assert_equal :server_done, s
      assert_equal ["msg0:#{i}", "msg1:#{i}", "msg2:#{i}", nil], c
    end
  end

  # read_nonblock and write_nonblock after ssl_set_bio behave as on a plain
  # socket: one attempt, IO::WaitReadable when nothing is there.
  def test_read_nonblock_after_ssl_set_bio
    server, client = connected_pair
    s = @machine.spin do
      first = server.read_nonblock(100, exception: false)
      raised = begin
        server.read_nonblock(100)
      rescue IO::WaitReadable => e
        e.class
      end
      @machine.poll(server.to_io.fileno, UM::POLLIN) # what wait_readable would do
      [first, raised, server.read_nonblock(100)]
    end
    c = @machine.spin do
      @machine.sleep(0.01)
      client.write_nonblock("ready")
    end
    (first, raised, data), = run_fibers!(s, c)
    assert_equal :wait_readable, first
    assert_operator raised, :<=, IO::WaitReadable
    assert_equal "ready", data
  end

  # UM::IO in :ssl mode: buffered reads of decrypted data

  def test_um_io_ssl_lines_and_records
    server, client = connected_pair
    s = @machine.spin do
      @machine.io(server, :ssl) do |io|
        lines = []
        while (line = io.read_line)
          break if line == "end"

          lines << line
        end
        record = io.read(5)
        io.write("got #{lines.size} lines and ", record, "\n")
        [lines, io.target.equal?(server)]
      end
    end
    count = ENV["UM_GC_STRESS"] == "1" ? 20 : 1000
    c = @machine.spin do
      count.times { |i| client.write("line #{i}\r\n") }
      client.write("end\nABCDE")
      client.gets
    end
    (lines, same_target), reply = run_fibers!(s, c)
    assert_equal count.times.map { |i| "line #{i}" }, lines
    assert same_target
    assert_equal "got #{count} lines and ABCDE\n", reply
  end

  def test_um_io_ssl_large_transfer_and_eof
    server, client = connected_pair
    data = Random.bytes(3 << 20)
    s = @machine.spin do
      io = @machine.io(server, :ssl)
      chunks = []
      io.read_each { |buffer| chunks << buffer.get_string }
      [chunks.join, io.eof?]
    end
    c = @machine.spin do
      @machine.ssl_write(client, data)
      client.close # close_notify: EOF for the reader
    end
    (got, eof), = run_fibers!(s, c)
    assert_equal Digest::SHA256.hexdigest(data), Digest::SHA256.hexdigest(got)
    assert eof
  end

  def test_um_io_ssl_refuses_other_targets
    r, _w = pipe
    assert_raises(TypeError) { UM::IO.new(@machine, r, :ssl) }
    assert_raises(TypeError) { UM::IO.new(@machine, :socket, :ssl) }
  end

  # Argument errors

  def test_argument_errors
    server, client = connected_pair
    plain_a, = raw_pair
    buf = +""
    assert_raises(TypeError) { @machine.ssl_set_bio(:x) }
    assert_raises(TypeError) { @machine.ssl_set_bio(nil) }
    assert_raises(TypeError) { @machine.ssl_set_bio(plain_a) }
    assert_raises(TypeError) { @machine.ssl_read(server, :not_a_buffer, 10) }
    assert_raises(TypeError) { @machine.ssl_read(server, buf, nil) }
    assert_raises(TypeError) { @machine.ssl_read(server, buf, "10") }
    assert_raises(ArgumentError) { @machine.ssl_read(server, buf, -1) }
    assert_raises(ArgumentError) { @machine.ssl_write(server, "abc", 10) }
    assert_raises(ArgumentError) { @machine.ssl_write(server, "abc", -2) }
    assert_raises(TypeError) { @machine.ssl_write(server, 123) }
    assert_raises(ArgumentError) { @machine.ssl_write(server) }
    assert_raises(TypeError) { @machine.ssl_read(:x, buf, 1) }
    assert_raises(TypeError) { @machine.ssl_read(plain_a, buf, 1) }
    assert_raises(TypeError) { @machine.ssl_write(nil, "abc") }
    assert_raises(UM::Error, TypeError) { @machine.ssl_set_bio(OpenSSL::SSL::SSLSocket.allocate) }
    assert_raises(UM::Error, TypeError) { @machine.ssl_read(OpenSSL::SSL::SSLSocket.allocate, buf, 1) }

    # The connection still works.
    s = @machine.spin { ssl_read_full(server, 2) }
    c = @machine.spin { @machine.ssl_write(client, "ok") }
    assert_equal ["ok", 2], run_fibers!(s, c)
  end

  # Certificate verification

  def assert_handshake_fails(client_ctx, hostname: "localhost", message: /certificate verify failed/)
    server, client = ssl_pair(server_context, client_ctx, hostname: hostname)
    s = @machine.spin { server.accept }
    c = @machine.spin { client.connect }
    server_result, client_result = run_fibers(s, c)
    assert_kind_of OpenSSL::SSL::SSLError, client_result
    assert_match message, client_result.message
    # The server sees the client's alert (or the connection closing).
    assert_kind_of Exception, server_result
    assert_kind_of OpenSSL::SSL::SSLError, server_result
  end

  def test_untrusted_certificate
    assert_handshake_fails(client_context(store: OpenSSL::X509::Store.new))
  end

  def test_wrong_hostname
    assert_handshake_fails(client_context, hostname: "wrong.example.com")
  end

  # A peer vanishing

  def test_peer_vanishes_mid_record
    server, client = connected_pair
    s = @machine.spin do
      buf = +""
      @machine.ssl_read(server, buf, 100)
    end
    c = @machine.spin do
      # The header of an application data record of 64 bytes, and then only
      # 10 of them.
      raw = client.to_io
      raw.write("\x17\x03\x03\x00\x40".b + ("\0" * 10))
      @machine.sleep(0.02)
      raw.close
    end
    result, = run_fibers(s, c)
    assert(result == 0 || result.is_a?(OpenSSL::SSL::SSLError) || result.is_a?(SystemCallError),
           "got #{result.inspect}")
  end

  def test_peer_shuts_down_mid_record_stock_readpartial
    server, client = connected_pair
    s = @machine.spin { server.readpartial(100) }
    c = @machine.spin do
      raw = client.to_io
      raw.write("\x17\x03\x03\x00\x40".b + ("\0" * 10))
      @machine.sleep(0.02)
      raw.shutdown(:WR)
    end
    result, = run_fibers(s, c)
    assert(result.is_a?(EOFError) || result.is_a?(OpenSSL::SSL::SSLError) || result.is_a?(SystemCallError),
           "got #{result.inspect}")
  end

  def test_peer_vanishes_during_large_write
    server, client = connected_pair
    data = Random.bytes(8 << 20)
    s = @machine.spin { @machine.ssl_write(server, data) }
    c = @machine.spin do
      got = ssl_read_full(client, 100_000)
      client.to_io.close
      got.bytesize
    end
    result, got = run_fibers(s, c)
    assert_equal 100_000, got
    assert_kind_of SystemCallError, result
  end

  def test_peer_vanishes_during_large_stock_write
    server, client = connected_pair
    data = Random.bytes(8 << 20)
    s = @machine.spin { server.write(data) }
    c = @machine.spin do
      got = readpartial_full(client, 100_000)
      client.to_io.close
      got.bytesize
    end
    result, got = run_fibers(s, c)
    assert_equal 100_000, got
    assert(result.is_a?(SystemCallError) || result.is_a?(OpenSSL::SSL::SSLError), "got #{result.inspect}")
  end

  def test_writer_vanishes_while_reader_reads
    server, client = connected_pair
    s = @machine.spin do
      data = readpartial_full(server, 1 << 30)
      data.bytesize
    end
    c = @machine.spin do
      # Writes without end, until the socket goes away under it.
      chunk = Random.bytes(1 << 20)
      w = @machine.spin { loop { client.write(chunk) } }
      @machine.sleep(0.02)
      client.to_io.shutdown(:RDWR)
      @machine.join(w)
    end
    result, written = run_fibers(s, c)
    # Whatever was read until then; or an error.
    assert(result.is_a?(Integer) || result.is_a?(OpenSSL::SSL::SSLError) || result.is_a?(SystemCallError),
           "got #{result.inspect}")
    assert_operator result, :<, 1 << 30 if result.is_a?(Integer)
    assert(written.is_a?(SystemCallError) || written.is_a?(OpenSSL::SSL::SSLError) || written.is_a?(IOError),
           "the writer ended with #{written.inspect}")
  end

  # Interruptions

  def test_timeout_interrupts_readpartial
    server, client = connected_pair
    s = @machine.spin do
      first = begin
        @machine.timeout(0.05, MyError) { server.readpartial(100) }
      rescue MyError => e
        e
      end
      [first, server.readpartial(100)]
    end
    c = @machine.spin do
      @machine.sleep(0.15)
      client.write("later")
    end
    (first, second), = run_fibers!(s, c)
    assert_kind_of MyError, first
    assert_equal "later", second
  end

  def test_timeout_interrupts_ssl_read
    server, client = connected_pair
    s = @machine.spin do
      buf = +""
      first = begin
        @machine.timeout(0.05, MyError) { @machine.ssl_read(server, buf, 100) }
      rescue MyError => e
        e
      end
      n = @machine.ssl_read(server, buf, 100)
      [first, n, buf]
    end
    c = @machine.spin do
      @machine.sleep(0.15)
      @machine.ssl_write(client, "later")
    end
    (first, n, buf), = run_fibers!(s, c)
    assert_kind_of MyError, first
    assert_equal [5, "later"], [n, buf]
  end

  def test_timeout_interrupts_gets_repeatedly
    server, client = connected_pair
    s = @machine.spin do
      timeouts = 0
      line = nil
      loop do
        line = @machine.timeout(0.01, MyError) { server.gets }
        break
      rescue MyError
        timeouts += 1
      end
      [timeouts, line]
    end
    c = @machine.spin do
      @machine.sleep(0.1)
      client.puts "finally"
    end
    (timeouts, line), = run_fibers!(s, c)
    assert_operator timeouts, :>=, 3
    assert_equal "finally\n", line
  end

  def test_schedule_exception_into_ssl_read
    server, client = connected_pair
    s = @machine.spin do
      buf = +""
      first = begin
        @machine.ssl_read(server, buf, 100)
      rescue MyError => e
        e
      end
      n = @machine.ssl_read(server, buf, 100)
      [first, n, buf]
    end
    c = @machine.spin do
      @machine.sleep(0.02)
      @machine.schedule(s, MyError.new("scheduled"))
      @machine.sleep(0.02)
      @machine.ssl_write(client, "after")
    end
    (first, n, buf), = run_fibers!(s, c)
    assert_kind_of MyError, first
    assert_equal "scheduled", first.message
    assert_equal [5, "after"], [n, buf]
  end

  def test_terminate_fiber_in_readpartial
    server, _client = connected_pair
    s = @machine.spin { server.readpartial(100) }
    @machine.sleep(0.02)
    @machine.terminate(s)
    assert_kind_of UM::Terminate, run_fibers(s)
  end

  # Fills the socket's send buffer with raw bytes (the peer never reads
  # them): the next TLS record sent on it blocks.
  def fill_send_buffer(io)
    loop { io.write_nonblock("z" * 65_536) }
  rescue IO::WaitWritable
    nil
  end

  def test_timeout_interrupts_close
    _server, client = connected_pair
    fill_send_buffer(client.to_io)
    c = @machine.spin do
      @machine.timeout(0.05, MyError) { client.close }
      :closed_without_error
    rescue MyError => e
      e
    end
    assert_kind_of MyError, run_fibers(c)
    assert client.to_io.closed?
  end

  def test_terminate_during_close
    _server, client = connected_pair
    fill_send_buffer(client.to_io)
    went_on = false
    c = @machine.spin do
      client.close
      went_on = true
    end
    @machine.sleep(0.02)
    @machine.terminate(c)
    assert_kind_of UM::Terminate, run_fibers(c)
    refute went_on, "the terminated fiber went on after #close"
  end

  # A timeout firing just as data arrives must not lose the data: the TLS
  # stream would be corrupt.
  def timeouts_racing_data(count)
    server, client = connected_pair
    expected = Array.new(count) { |i| format("%07d\n", i) }.join
    received = +""
    timeouts = 0
    reader = @machine.spin do
      while received.bytesize < expected.bytesize
        begin
          chunk = @machine.timeout(0.0001 + (rand * 0.0004), MyError) { yield(server) }
          break if chunk.nil?

          received << chunk
        rescue MyError
          timeouts += 1
        end
      end
      :done
    end
    writer = @machine.spin do
      count.times do |i|
        break if reader.done?

        @machine.ssl_write(client, format("%07d\n", i))
        @machine.sleep(rand * 0.0005) if i.even?
      end
      :written
    end
    reader_result, = run_fibers(reader, writer)
    assert_operator timeouts, :>, 0
    assert_equal :done, reader_result
    assert_equal expected, received
  end

  def test_timeouts_racing_data_ssl_read
    timeouts_racing_data(1000) do |ssl|
      buf = +""
      @machine.ssl_read(ssl, buf, 1000).zero? ? nil : buf
    end
  end

  def test_timeouts_racing_data_readpartial
    timeouts_racing_data(1000) do |ssl|
      ssl.readpartial(1000)
    rescue EOFError
      nil
    end
  end

  def test_timeout_interrupts_connect
    _server, client = ssl_pair # nobody accepts
    c = @machine.spin do
      @machine.timeout(0.05, MyError) { client.connect }
    rescue MyError => e
      e
    end
    assert_kind_of MyError, run_fibers(c)
  end
end

# Net::HTTP over HTTPS under UM::FiberScheduler.
class SSLSchedulerTest < SchedulerTestCase
  include SSLTestHelpers

  def teardown
    close_tracked_ios
    super
  end

  # Serves HTTP requests on one TLS connection until the client closes it:
  # GET answers "got <path>", POST echoes the body reversed.
  def serve_https(ssl)
    loop do
      request_line = ssl.gets or break
      headers = {}
      while (line = ssl.gets) && line != "\r\n"
        name, value = line.split(":", 2)
        headers[name.downcase] = value.strip
      end
      method, path, = request_line.split
      body = headers["content-length"] ? ssl.read(Integer(headers["content-length"])) : nil
      reply = method == "POST" ? body.reverse : "got #{path}"
      ssl.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" \
                "Content-Length: #{reply.bytesize}\r\n\r\n#{reply}")
    end
  rescue EOFError, OpenSSL::SSL::SSLError, Errno::ECONNRESET, Errno::EPIPE
    nil
  ensure
    ssl.close
  end

  # A one-connection HTTPS server and a Net::HTTP client doing a GET and a
  # POST, both as scheduled fibers. Returns the responses.
  def https_exchange(server_on_ring:)
    server = track_io(TCPServer.new("127.0.0.1", 0))
    port = server.addr[1]
    responses = server_error = @accepted = nil
    scheduled do
      Timeout.timeout(5, HangError) do
        server_fiber = Fiber.schedule do
          sock = @accepted = track_io(server.accept)
          ssl = OpenSSL::SSL::SSLSocket.new(sock, server_context)
          ssl.sync_close = true
          Fiber.scheduler.machine.ssl_set_bio(ssl) if server_on_ring
          ssl.accept
          serve_https(ssl)
        rescue Exception => e # rubocop:disable Lint/RescueException
          server_error = e
        end
        http = Net::HTTP.new("127.0.0.1", port)
        http.use_ssl = true
        http.cert_store = SSLTestCert.store
        http.verify_mode = OpenSSL::SSL::VERIFY_PEER
        http.open_timeout = http.read_timeout = http.write_timeout = 5
        responses = http.start do
          get = http.get("/hello")
          post = http.post("/echo", "post body", "Content-Type" => "text/plain")
          [get, post]
        end
        server_fiber
      end
    end
    raise server_error if server_error

    responses
  end

  def check_responses(responses)
    get, post = responses
    assert_equal "200", get.code
    assert_equal "got /hello", get.body
    assert_equal "200", post.code
    assert_equal "ydob tsop", post.body
  end

  # The IOs io_wait was called for.
  def io_wait_ios
    @recorder.args(:io_wait).map(&:first)
  end

  def test_net_http_https
    check_responses(https_exchange(server_on_ring: false))
    # The stock SSL sockets are non-blocking: they wait for readiness with
    # io_wait (the client's and the server's), and read and write directly
    # (no io_read/io_write hooks).
    assert_hooks :io_wait
    refute_hooks :io_read, :io_write
    assert(io_wait_ios.any? { |io| io.equal?(@accepted) }, "no io_wait on the server's socket")
  end

  def test_net_http_https_server_on_ring
    check_responses(https_exchange(server_on_ring: true))
    assert_hooks :io_wait # the client's (and the server's accept)
    refute_hooks :io_read, :io_write
    # The server's record I/O ran on the machine, without hooks.
    refute(io_wait_ios.any? { |io| io.equal?(@accepted) }, "io_wait on the server's socket")
  end
end
