# frozen_string_literal: true

require_relative "helper"

class UMIOTest < UMTestCase
  def test_read_line
    r, w = pipe
    io = @machine.io(r)
    assert_kind_of UM::IO, io
    feed(w, "hello\r\nworld\n", "last")
    assert_equal "hello", io.read_line
    assert_equal "world", io.read_line
    # No line end before EOF: nil, and the rest stays for #read.
    assert_nil io.read_line
    assert_equal 4, io.pending
    assert_equal "last", io.read(0)
    assert_nil io.read_line
    assert io.eof?
  end

  def test_lines_split_at_every_boundary
    text = "first line\r\nsecond\n\nthird line here\nend"
    expected = ["first line", "second", "", "third line here"]
    (1...text.bytesize).each do |i|
      r, w = pipe
      io = UM::IO.new(@machine, r, :fd)
      feed(w, text[0, i], text[i..])
      lines = []
      while (line = io.read_line)
        lines << line
      end
      assert_equal expected, lines, "split at #{i}"
      assert_equal "end", io.read(0), "split at #{i}"
      assert_equal text.bytesize, io.consumed
    end
    assert_equal 0, @machine.metrics[:buffers_in_use]
  end

  def test_read_to_delim_split_at_every_boundary
    text = "GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"
    (1...text.bytesize).each do |i|
      r, w = pipe
      io = @machine.io(r)
      feed(w, text[0, i], text[i..])
      assert_equal "GET / HTTP/1.1\r\nHost: x", io.read_to_delim("\r\n\r\n"), "split at #{i}"
      assert_equal "body", io.read(4)
    end
  end

  # The limit counts the line end: a longer line gives nil and stays.
  def test_read_line_limit
    r, w = pipe
    io = @machine.io(r)
    feed(w, "abcdefghij\nxy\r\nz")
    assert_nil io.read_line(4)
    assert_nil io.read_line(10)
    assert_equal 16, io.pending
    assert_equal "abcdefghij", io.read_line(11)
    assert_nil io.read_line(3)
    assert_equal "xy", io.read_line(4)
    assert_nil io.read_line(100) # no line end before EOF
    assert_equal "z", io.read(-5)
    assert_nil io.read_line
  end

  def test_read_line_limit_waits_only_up_to_the_limit
    r, w = pipe
    io = @machine.io(r)
    @machine.write(w, "0123456789")
    # Ten bytes without a line end exceed a limit of 8: no wait for more.
    assert_nil @machine.timeout(2, Timeout::Error) { io.read_line(8) }
    @machine.write(w, "\n")
    assert_equal "0123456789", io.read_line(11)
  end

  def test_read_to_delim_limit_and_eof
    r, w = pipe
    io = @machine.io(r)
    feed(w, "key=value;k2=", "v2;rest")
    assert_nil io.read_to_delim(";", 5)
    assert_equal "key=value", io.read_to_delim(";", 10)
    assert_equal "k2=v2", io.read_to_delim(";")
    assert_nil io.read_to_delim(";")
    assert_equal "rest", io.read(4)
    assert_nil io.read_to_delim(";")
  end

  def test_read_lengths
    r, w = pipe
    io = @machine.io(r)
    feed(w, "0123", "456789")
    assert_equal "012345", io.read(6)
    assert_equal "67", io.read(-2)
    assert_equal "89", io.read(0)
    assert_nil io.read(0) # EOF
    assert_nil io.read(1)
  end

  def test_read_negative_waits_for_data
    r, w = pipe
    io = @machine.io(r)
    feed(w, "abc")
    assert_equal "ab", io.read(-2)
    assert_equal "c", io.read(-10)
    assert_nil io.read(-10)
  end

  # -(-2**63) does not fit a long: UBSan caught the negation.
  def test_read_most_negative_length
    r, w = pipe
    io = @machine.io(r)
    feed(w, "abc")
    assert_equal "abc", io.read(-2**63)
    assert_raises(RangeError) { io.read(-2**64) }
  end

  def test_read_exact_at_eof
    r, w = pipe
    io = @machine.io(r)
    feed(w, "abc")
    assert_nil io.read(10)
    assert_equal 3, io.pending
  end

  def test_skip_pending_consumed_clear
    r, w = pipe
    io = @machine.io(r)
    feed(w, "0123456789", "abcdef")
    assert_equal 3, io.skip(3)
    assert_equal 3, io.consumed
    assert_equal "3456", io.read(4)
    assert_equal 7, io.consumed
    assert_equal 3, io.pending
    io.clear
    assert_equal 0, io.pending
    assert_equal "abcdef", io.read(6)
    assert_equal 0, io.skip(5)
  end

  def test_read_each_views
    r, w = pipe
    io = @machine.io(r)
    feed(w, "one", "two", "three")
    views = []
    chunks = []
    io.read_each do |buf|
      assert_kind_of IO::Buffer, buf
      assert buf.readonly?
      chunks << buf.get_string
      views << buf
    end
    assert_equal "onetwothree", chunks.join
    # A view does not outlive its block: afterwards it shows no memory.
    assert(views.all? { |v| v.null? && v.size.zero? })
    assert_equal 0, @machine.metrics[:buffers_in_use]
  end

  def test_read_each_pending_data_first
    r, w = pipe
    io = @machine.io(r)
    feed(w, "head\nrest")
    assert_equal "head", io.read_line
    chunks = []
    io.read_each { |buf| chunks << buf.get_string }
    assert_equal "rest", chunks.join
  end

  def test_write
    r, w = pipe
    io = @machine.io(w)
    assert_equal 11, io.write("hello", " ", IO::Buffer.for("world"))
    assert_equal "hello world", read_once(r, 20)
    assert_raises(TypeError) { io.write(:x) }
  end

  def test_socket_mode
    a, b = socketpair
    server = @machine.io(b, :socket)
    client = @machine.io(a, :socket)
    client.write("ping\n")
    assert_equal "ping", server.read_line
    server.write("pong\n")
    assert_equal "pong", client.read_line
  end

  def test_block_form
    r, w = pipe
    @machine.write(w, "x\n")
    assert_equal "x", @machine.io(r) { |io| io.read_line }
  end

  def test_timeout_while_reading
    r, w = pipe
    io = @machine.io(r)
    assert_raises(Timeout::Error) { @machine.timeout(0.01, Timeout::Error) { io.read_line } }
    assert_no_pending_ops
    @machine.write(w, "later\n")
    assert_equal "later", io.read_line
  end

  def test_buffers_return_to_the_pool_when_collected
    r, w = pipe
    io = @machine.io(r)
    # A remainder larger than UM_IO_COMPACT_MAX stays in the pool buffer.
    @machine.write(w, "a\n#{'b' * 8000}\n")
    io.read_line
    assert_equal 1, @machine.metrics[:buffers_in_use]
    io = nil # rubocop:disable Lint/UselessAssignment
    GC.start
    assert_equal 0, @machine.metrics[:buffers_in_use]
  end

  # A small remainder leaves the pool at once: a connection waiting for the
  # rest of a line holds no pool buffer meanwhile.
  def test_small_remainder_leaves_the_pool
    r, w = pipe
    io = @machine.io(r)
    @machine.write(w, "first\nsecond half")
    assert_equal "first", io.read_line
    assert_equal 11, io.pending
    assert_equal 0, @machine.metrics[:buffers_in_use]
    @machine.write(w, " and the rest\n")
    assert_equal "second half and the rest", io.read_line
    assert_equal 0, @machine.metrics[:buffers_in_use]
  end

  def test_bad_arguments
    r, _w = pipe
    assert_raises(ArgumentError) { UM::IO.new(@machine, r, :nope) }
    assert_raises(TypeError) { UM::IO.new(@machine, r, :ssl) } # an fd is not an SSL socket
    assert_raises(TypeError) { UM::IO.new(@machine, "r") }
    assert_raises(TypeError) { UM::IO.new(:m, r) }
    io = @machine.io(r)
    assert_raises(TypeError) { io.read("1") }
    assert_raises(ArgumentError) { io.skip(-1) }
    assert_raises(TypeError) { io.read_to_delim(1) }
    assert_raises(ArgumentError) { io.read_to_delim("") }
    assert_raises(ArgumentError) { io.read_line(-1) }
    assert_raises(UM::Error) { Thread.new { io.read_line }.tap { _1.report_on_exception = false }.join }
  end
end
