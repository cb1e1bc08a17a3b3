# frozen_string_literal: true

require_relative "ssl_helper"

# Several fibers on one SSL socket, interruptions while OpenSSL waits for
# record I/O, and the length rules of #ssl_write and #ssl_read.
class SSLFibersTest < UMTestCase
  include SSLTestHelpers

  def teardown
    close_tracked_ios
    super
  end

  # The client writes count lines (with ssl_write) while another fiber keeps
  # timing out in ssl_read on the same socket; the server echoes them. Every
  # line comes back, in order.
  def test_ssl_read_timeouts_while_another_fiber_writes
    server, client = connected_pair
    count = 300
    lines = Array.new(count) { |i| format("%05d %s\n", i, "x" * (i % 200)) }
    expected = lines.join
    echo = @machine.spin do
      got = ssl_read_full(server, expected.bytesize, 700)
      @machine.ssl_write(server, got)
    end
    received = +""
    timeouts = 0
    reader = @machine.spin do
      buf = +""
      while received.bytesize < expected.bytesize
        begin
          n = @machine.timeout(0.0002 + (rand * 0.0005), MyError) { @machine.ssl_read(client, buf, 500) }
          break if n.zero?

          received << buf
        rescue MyError
          timeouts += 1
        end
      end
    end
    writer = @machine.spin do
      lines.each_with_index do |line, i|
        @machine.ssl_write(client, line)
        @machine.sleep(0.0003) if (i % 7).zero?
        GC.start if (i % 100).zero?
      end
    end
    run_fibers!(echo, reader, writer, seconds: 10)
    assert_operator timeouts, :>, 0
    assert_equal expected, received
  end

  # Two fibers read the same socket; one of them times out repeatedly. What
  # the peer sends arrives whole at one reader or the other.
  def test_two_readers_one_timing_out
    server, client = connected_pair
    expected = Array.new(200) { |i| format("%04d\n", i) }.join
    received = +""
    steady = @machine.spin do
      buf = +""
      while received.bytesize < expected.bytesize
        n = @machine.ssl_read(server, buf, 64)
        break if n.zero?

        received << buf
      end
    end
    jittery = @machine.spin do
      buf = +""
      while received.bytesize < expected.bytesize
        begin
          n = @machine.timeout(0.0003, MyError) { @machine.ssl_read(server, buf, 64) }
          break if n.zero?

          received << buf
        rescue MyError
          nil
        end
      end
    end
    writer = @machine.spin do
      expected.each_line.with_index do |line, i|
        @machine.ssl_write(client, line)
        @machine.sleep(0.0005) if i.even?
      end
    end
    run_fibers(writer, seconds: 10)
    @machine.timeout(5, HangError) { @machine.sleep(0.001) until received.bytesize >= expected.bytesize }
    @machine.terminate(steady, jittery)
    run_fibers(steady, jittery)
    assert_equal expected.lines.sort, received.lines.sort
  end

  # A fiber waits in ssl_read while another one's ssl_read on the same
  # socket times out, repeatedly (OpenSSL, entered twice, once dropped its
  # read buffer under the first fiber's pending recv: a crash in SSL_read).
  def test_ssl_read_pending_while_another_reader_times_out
    server, client = connected_pair
    reader = @machine.spin do
      buf = +""
      Array.new(3) do
        @machine.ssl_read(server, buf, 100)
        buf.dup
      end
    end
    @machine.sleep(0.01)
    jittery = @machine.spin do
      Array.new(5) do
        @machine.timeout(0.005, MyError) { @machine.ssl_read(server, +"", 100) }
      rescue MyError => e
        e
      end
    end
    assert(run_fibers!(jittery).all?(MyError))
    GC.start
    %w[one two three].each do |word|
      @machine.ssl_write(client, word)
      @machine.sleep(0.01)
    end
    assert_equal %w[one two three], run_fibers!(reader)
  end

  # A writer times out (the peer does not read) while a reader waits on the
  # same socket; the reader still gets what the peer sends.
  def test_ssl_write_timeout_while_a_reader_waits
    server, client = connected_pair
    fill_send_buffer(server.to_io)
    reader = @machine.spin { buf = +""; [@machine.ssl_read(server, buf, 100), buf] }
    @machine.sleep(0.01)
    writer = @machine.spin do
      @machine.timeout(0.02, MyError) { @machine.ssl_write(server, "x" * 100_000) }
    rescue MyError => e
      e
    end
    assert_kind_of MyError, run_fibers(writer)
    GC.start
    @machine.ssl_write(client, "one")
    assert_equal [3, "one"], run_fibers!(reader)
  end

  # Fills the socket's send buffer with raw bytes the peer never reads.
  def fill_send_buffer(io)
    loop { io.write_nonblock("z" * 65_536) }
  rescue IO::WaitWritable
    nil
  end

  # Two records that came in one recv: the second one waits in the BIO
  # for the next read, a non-blocking one included.
  def test_records_kept_for_the_next_read
    server, client = connected_pair
    @machine.ssl_write(client, "aaa")
    @machine.ssl_write(client, "bbb")
    @machine.ssl_write(client, "ccc")
    @machine.sleep(0.01)
    first = run_fibers!(@machine.spin { server.readpartial(100) })
    GC.start
    second = server.read_nonblock(100, exception: false)
    buf = +""
    third = @machine.ssl_read(server, buf, 100)
    assert_equal ["aaa", "bbb", 3, "ccc"], [first, second, third, buf]
    assert_equal :wait_readable, server.read_nonblock(100, exception: false)
  end

  # A reader terminated while OpenSSL waits for a record; meanwhile a writer
  # works on the same socket, the GC runs (and compacts); afterwards a new
  # reader gets the data.
  def test_fiber_terminated_mid_read_and_gc_while_pending
    server, client = connected_pair
    readers = Array.new(3) { @machine.spin { @machine.ssl_read(server, +"", 100) } }
    @machine.sleep(0.01)
    writer = @machine.spin { @machine.ssl_write(server, "from the server") }
    GC.start(full_mark: true, immediate_sweep: true)
    GC.compact if GC.respond_to?(:compact)
    @machine.terminate(*readers)
    results = run_fibers(*readers)
    assert(results.all? { |r| r.is_a?(UM::Terminate) }, results.inspect)
    assert_equal "from the server", run_fibers!(@machine.spin { ssl_read_full(client, 15) })
    run_fibers!(writer)
    GC.start
    c = @machine.spin do
      @machine.sleep(0.01)
      @machine.ssl_write(client, "late")
    end
    s = @machine.spin do
      buf = +""
      [@machine.ssl_read(server, buf, 100), buf]
    end
    assert_equal [[4, "late"], 4], run_fibers!(s, c)
  end

  # A reader and a writer on each end, as with a core SSLSocket: a fiber
  # waiting for a record never keeps the other direction from moving.
  def test_reader_never_blocks_writer
    server, client = connected_pair
    data = Random.bytes(1 << 20)
    # Both ends write before either reads: the sockets' buffers fill up.
    sw = @machine.spin { @machine.ssl_write(server, data) }
    cw = @machine.spin { @machine.ssl_write(client, data) }
    sr = @machine.spin { ssl_read_full(server, data.bytesize) }
    cr = @machine.spin { ssl_read_full(client, data.bytesize) }
    written_s, written_c, read_s, read_c = run_fibers!(sw, cw, sr, cr, seconds: 20)
    assert_equal [data.bytesize, data.bytesize], [written_s, written_c]
    assert_equal Digest::SHA256.digest(data), Digest::SHA256.digest(read_s)
    assert_equal Digest::SHA256.digest(data), Digest::SHA256.digest(read_c)
  end

  # The stock methods after ssl_set_bio: a reader fiber in readpartial and a
  # writer fiber on the same socket.
  def test_stock_reader_and_writer_on_one_socket
    server, client = connected_pair
    reader = @machine.spin { client.readpartial(100) }
    @machine.sleep(0.01)
    writer = @machine.spin { client.write("ping") }
    echo = @machine.spin { server.write(server.readpartial(100).upcase) }
    assert_equal ["PING", 4, 4], run_fibers!(reader, writer, echo)
  end

  # ssl_write: len 0, nil or -1 means the whole buffer.
  def test_ssl_write_len_means_whole_buffer
    server, client = connected_pair
    s = @machine.spin { ssl_read_full(server, 18) }
    c = @machine.spin do
      [
        @machine.ssl_write(client, "hello", 0),
        @machine.ssl_write(client, " there", nil),
        @machine.ssl_write(client, " all", -1),
        @machine.ssl_write(client, "!!", 1),
        @machine.ssl_write(client, IO::Buffer.for("xy"), 0)
      ]
    end
    received, written = run_fibers!(s, c)
    assert_equal [5, 6, 4, 1, 2], written
    assert_equal "hello there all!xy", received
  end

  def test_ssl_read_argument_errors
    server, client = connected_pair
    plain, = raw_pair
    buf = +""
    assert_raises(TypeError) { @machine.ssl_read(server, buf, 1.5) }
    assert_raises(TypeError) { @machine.ssl_read(server, buf, :ten) }
    assert_raises(TypeError) { @machine.ssl_read(server, nil, 10) }
    assert_raises(TypeError) { @machine.ssl_read(server, 42, 10) }
    assert_raises(FrozenError, TypeError) { @machine.ssl_read(server, "frozen", 10) }
    assert_raises(ArgumentError) { @machine.ssl_read(server, buf, -1) }
    assert_raises(ArgumentError) { @machine.ssl_read(server, buf, -100) }
    assert_raises(TypeError) { @machine.ssl_read(plain.fileno, buf, 10) }
    assert_raises(TypeError) { @machine.ssl_read(plain, buf, 10) }
    assert_raises(TypeError) { @machine.ssl_read(Object.new, buf, 10) }
    # The socket is checked first, even when there is nothing to read.
    assert_raises(TypeError) { @machine.ssl_read(plain, buf, 0) }
    assert_raises(TypeError) { @machine.ssl_read(nil, buf, 0) }
    assert_raises(ArgumentError) { @machine.ssl_read(server, buf) }
    assert_raises(TypeError) { @machine.ssl_write(server, "abc", 1.5) }
    assert_raises(ArgumentError) { @machine.ssl_write(server, "abc", -2) }
    assert_equal 0, @machine.ssl_read(server, buf, 0)
    # The socket still works.
    s = @machine.spin { ssl_read_full(server, 2) }
    c = @machine.spin { @machine.ssl_write(client, "ok") }
    assert_equal ["ok", 2], run_fibers!(s, c)
  end

  # A fiber that re-enters OpenSSL on a socket it is already inside of
  # (from a verify callback) gets UM::Error, not a corrupt SSL object.
  def test_reentry_from_verify_callback
    cctx = client_context
    reentry = nil
    cctx.verify_callback = lambda do |ok, _store|
      reentry ||= begin
        @machine.ssl_write(@client_for_callback, "x")
        :no_error
      rescue UM::Error => e
        e
      end
      ok
    end
    server, client = ssl_pair(server_context, cctx)
    @client_for_callback = client
    handshake(server, client)
    assert_kind_of UM::Error, reentry
    assert_match(/already/, reentry.message)
  end
end

# A socket that #ssl_read (or #ssl_write, or UM::IO) put on the machine
# without #ssl_set_bio: its stock methods wait on the machine too.
class SSLImplicitBIOTest < UMTestCase
  include SSLTestHelpers

  def teardown
    close_tracked_ios
    super
  end

  def test_stock_methods_after_implicit_bio
    a, b = raw_pair
    server = OpenSSL::SSL::SSLSocket.new(a, server_context)
    client = OpenSSL::SSL::SSLSocket.new(b, client_context)
    client.hostname = "localhost"
    peer = Thread.new do
      client.connect
      client.write("first")
      sleep 0.2
      client.write("second")
      client.close
    end
    server.accept # stock, before the machine knows the socket
    buf = +""
    assert_equal 5, @machine.ssl_read(server, buf, 100)
    assert_equal "first", buf
    ticks = 0
    ticker = @machine.spin do
      loop do
        @machine.sleep(0.02)
        ticks += 1
      end
    end
    reader = @machine.spin { server.readpartial(100) }
    assert_equal "second", run_fibers!(reader)
    @machine.terminate(ticker)
    run_fibers(ticker)
    assert peer.join(5)
    # The machine ran its other fibers while readpartial waited.
    assert_operator ticks, :>=, 3
  ensure
    peer&.kill
  end
end
